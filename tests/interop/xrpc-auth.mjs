// Service-auth JWTs and lexicon verdicts checked by the reference
// implementation (@atproto/xrpc-server, @atproto/crypto, @atproto/api's
// lexicon catalog).
//
// Input: {
//   verify: [{ jwt, didKey, aud, lxm }]       verifyJwt with getSigningKey -> didKey
//   create: [{ alg, privHex, iss, aud, lxm, exp }]   createServiceJwt
//   records: [{ collection, record }]          lexicons.assertValidRecord
// }
// Output: { verify: [{ ok, payload? , error?, message? }],
//           create: [{ jwt, didKey }], records: [{ ok, message? }] }

import { verifyJwt, createServiceJwt } from '@atproto/xrpc-server'
import { Secp256k1Keypair, P256Keypair } from '@atproto/crypto'
import { lexicons, jsonToLex } from '@atproto/api'
import { readInput, writeOutput } from './lib/io.mjs'

const input = (await readInput()) ?? {}

const verify = []
for (const c of input.verify ?? []) {
  try {
    const payload = await verifyJwt(c.jwt, c.aud ?? null, c.lxm ?? null, async () => c.didKey)
    verify.push({ ok: true, payload })
  } catch (err) {
    verify.push({ ok: false, error: err.customErrorName ?? err.error ?? err.name, message: err.message })
  }
}

const create = []
for (const c of input.create ?? []) {
  const keypair =
    c.alg === 'ES256K' ? await Secp256k1Keypair.import(c.privHex) : await P256Keypair.import(c.privHex)
  const jwt = await createServiceJwt({
    iss: c.iss,
    aud: c.aud,
    lxm: c.lxm ?? undefined,
    exp: c.exp ?? undefined,
    keypair,
  })
  create.push({ jwt, didKey: keypair.did() })
}

const records = []
for (const c of input.records ?? []) {
  try {
    lexicons.assertValidRecord(c.collection, jsonToLex(c.record))
    records.push({ ok: true })
  } catch (err) {
    records.push({ ok: false, message: err.message })
  }
}

writeOutput({ verify, create, records })
