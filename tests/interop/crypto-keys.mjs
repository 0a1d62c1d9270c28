// Keys, did:key and signatures: the Rust crate against @atproto/crypto.
//
// Input: { cases: [ { alg: "ES256" | "ES256K", privHex, didKey,
//                     uncompressedHex, msgHex, sigHex, highSHex } ],
//          generate: { ES256: N, ES256K: N } }
// For each case (key and signature made in Rust) the reference computes the
// did:key from the private key and from the uncompressed public key, signs
// the message itself, and verifies the Rust signature, a tampered message,
// and the Rust-made high-S variant (strict and with allowMalleableSig). It
// also produces, from its own signature, a high-S variant and a DER
// encoding for Rust to judge. With `generate`, it creates keys of its own,
// signs a random message with each, and reports them for Rust to check.

import {
  P256Keypair,
  Secp256k1Keypair,
  formatDidKey,
  parseDidKey,
  verifySignature,
} from '@atproto/crypto'
import { p256 } from '@noble/curves/p256'
import { secp256k1 } from '@noble/curves/secp256k1'
import { randomBytes } from 'node:crypto'
import { readInput, writeOutput, hex } from './lib/io.mjs'

const curves = {
  ES256: { Keypair: P256Keypair, noble: p256 },
  ES256K: { Keypair: Secp256k1Keypair, noble: secp256k1 },
}

function curveOf(alg) {
  const curve = curves[alg]
  if (!curve) throw new Error(`unknown alg ${alg}`)
  return curve
}

// The other signature for the same (r): s -> n - s.
function flipS(noble, sigBytes) {
  const sig = noble.Signature.fromCompact(sigBytes)
  const flipped = new noble.Signature(sig.r, noble.CURVE.n - sig.s)
  return flipped.toCompactRawBytes()
}

function hasHighS(noble, sigBytes) {
  return noble.Signature.fromCompact(sigBytes).hasHighS()
}

// The reference's verdict: true or false, or the message it threw (it
// throws, instead of answering false, on a signature that is not 64 bytes
// in strict mode).
async function verdict(promise) {
  try {
    return await promise
  } catch (err) {
    return `threw: ${err.message}`
  }
}

async function checkCase(c) {
  const { Keypair, noble } = curveOf(c.alg)
  const msg = hex.decode(c.msgHex)
  const rustSig = hex.decode(c.sigHex)
  const rustHighS = hex.decode(c.highSHex)
  const kp = await Keypair.import(c.privHex)
  const did = kp.did()
  const didFromUncompressed = formatDidKey(c.alg, hex.decode(c.uncompressedHex))
  const parsed = parseDidKey(c.didKey)

  const refSig = await kp.sign(msg)
  const refHighS = flipS(noble, refSig)
  const refDer = noble.Signature.fromCompact(refSig).toDERRawBytes()

  const tampered = new Uint8Array([...msg, 0x21])
  return {
    did,
    didFromUncompressed,
    parsedAlg: parsed.jwtAlg,
    parsedKeyHex: hex.encode(parsed.keyBytes),
    refPublicCompressedHex: hex.encode(kp.publicKeyBytes()),
    refSigHex: hex.encode(refSig),
    refSigHighS: hasHighS(noble, refSig),
    refHighSHex: hex.encode(refHighS),
    refDerHex: hex.encode(refDer),
    rustSigLowS: !hasHighS(noble, rustSig),
    rustSigVerifies: await verifySignature(c.didKey, msg, rustSig),
    rustSigTamperedVerifies: await verifySignature(c.didKey, tampered, rustSig),
    rustHighSIsHighS: hasHighS(noble, rustHighS),
    rustHighSStrict: await verifySignature(c.didKey, msg, rustHighS),
    rustHighSMalleable: await verifySignature(c.didKey, msg, rustHighS, {
      allowMalleableSig: true,
    }),
    refDerStrict: await verdict(verifySignature(did, msg, refDer)),
    refDerMalleable: await verifySignature(did, msg, refDer, {
      allowMalleableSig: true,
    }),
  }
}

async function generated(alg, count) {
  const { Keypair } = curveOf(alg)
  const out = []
  for (let i = 0; i < count; i++) {
    const kp = await Keypair.create({ exportable: true })
    const msg = randomBytes(1 + (i % 200))
    const sig = await kp.sign(msg)
    out.push({
      alg,
      privHex: hex.encode(await kp.export()),
      did: kp.did(),
      msgHex: hex.encode(msg),
      sigHex: hex.encode(sig),
      verifies: await verifySignature(kp.did(), msg, sig),
    })
  }
  return out
}

const input = await readInput()
const results = []
for (const c of input.cases ?? []) results.push(await checkCase(c))
const generatedKeys = []
for (const [alg, count] of Object.entries(input.generate ?? {})) {
  generatedKeys.push(...(await generated(alg, count)))
}
writeOutput({ results, generated: generatedKeys })
