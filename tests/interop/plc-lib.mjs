// Cross-implementation checks for crates/atp-did-plc against the reference
// did:plc library (@did-plc/lib 0.0.4) and @atproto/crypto.
//
// Input: {"cases": [{"cmd": ..., ...}, ...]}; output: one result per case.
//
// Commands:
//   inspect   {op}                      -> DAG-CBOR hex, CID, DID (if genesis)
//   submit    {did, log, proposed, now} -> what the reference directory
//             (@did-plc/server 0.0.1 POST /:did) decides: the structure check
//             of the route, then assureValidNextOp with the clock at `now`.
//             `log` is the list of operations in force [{operation, createdAt}].
//   validate  {did, ops}                -> validateOperationLog
//   verify    {didKey, dataHex, sigB64url} -> current @atproto/crypto verifySignature
//   doc       {data}                    -> formatDidDoc of @did-plc/lib 0.0.4
//   scenarios {}                        -> audit logs produced by the reference
//             library (genesis, updates, recovery, tombstone, legacy create,
//             late recovery), each replayed through assureValidNextOp.

import * as plc from '@did-plc/lib'
import * as crypto from '@atproto/crypto'
import * as cbor from '@ipld/dag-cbor'
import { readInput, writeOutput, hex } from './lib/io.mjs'

const HOUR = 60 * 60 * 1000

// Operations may come as JSON text, so that member order survives the trip
// (it decides the order of map entries in the reference's output).
const parseOp = (op) => (typeof op === 'string' ? JSON.parse(op) : op)

async function cidOf(op) {
  const { cid } = await plc.getLastOpWithCid([op])
  return cid
}

function errorResult(err) {
  return {
    ok: false,
    error: err?.constructor?.name ?? 'Error',
    plcError: plc.PlcError.is(err),
    message: String(err?.message ?? err),
  }
}

async function withClock(iso, fn) {
  const original = Date.now
  Date.now = () => Date.parse(iso)
  try {
    return await fn()
  } finally {
    Date.now = original
  }
}

async function indexLog(did, log) {
  const out = []
  for (const entry of log) {
    out.push({
      did,
      operation: parseOp(entry.operation),
      cid: await cidOf(parseOp(entry.operation)),
      nullified: false,
      createdAt: new Date(entry.createdAt),
    })
  }
  return out
}

async function inspect({ op: raw }) {
  const op = parseOp(raw)
  const bytes = cbor.encode(op)
  const result = { cborHex: hex.encode(bytes), cid: (await cidOf(op)).toString() }
  if (op.prev === null) result.did = await plc.didForCreateOp(op)
  return result
}

async function submit({ did, log, proposed: raw, now }) {
  const proposed = parseOp(raw)
  // The route's structure check (routes.ts: check.is(op, def.opOrTombstone)).
  if (!plc.def.opOrTombstone.safeParse(proposed).success) {
    return { ok: false, error: 'NotAValidOperation', plcError: false, message: `Not a valid operation: ${JSON.stringify(proposed)}` }
  }
  try {
    const ops = await indexLog(did, log)
    const res = await withClock(now, () => plc.assureValidNextOp(did, ops, proposed))
    return {
      ok: true,
      nullified: res.nullified.map((c) => c.toString()),
      prev: res.prev ? res.prev.toString() : null,
    }
  } catch (err) {
    return errorResult(err)
  }
}

async function validate({ did, ops: raw }) {
  const ops = raw.map(parseOp)
  try {
    const data = await plc.validateOperationLog(did, ops)
    // dataJson: the exact bytes `GET /:did/data` sends (res.json).
    return { ok: true, data, dataJson: JSON.stringify(data) }
  } catch (err) {
    return errorResult(err)
  }
}

async function verify({ didKey, dataHex, sigB64url }) {
  const sig = new Uint8Array(Buffer.from(sigB64url, 'base64url'))
  return { valid: await crypto.verifySignature(didKey, hex.decode(dataHex), sig) }
}

async function doc({ data }) {
  return { doc: plc.formatDidDoc(data) }
}

// ---- reference-made logs -------------------------------------------------

// Appends `op` to an audit log the way the directory does: validate against
// the operations in force at `createdAt`, mark the nullified ones.
async function append(did, audit, op, createdAt) {
  const inForce = []
  for (const e of audit) {
    if (!e.nullified) {
      inForce.push({ did, operation: e.operation, cid: await cidOf(e.operation), nullified: false, createdAt: new Date(e.createdAt) })
    }
  }
  const res = await withClock(createdAt, () => plc.assureValidNextOp(did, inForce, op))
  const gone = new Set(res.nullified.map((c) => c.toString()))
  for (const e of audit) if (gone.has(e.cid)) e.nullified = true
  audit.push({ did, operation: op, cid: (await cidOf(op)).toString(), nullified: false, createdAt })
}

async function finalState(did, audit) {
  const ops = audit.filter((e) => !e.nullified).map((e) => e.operation)
  return validate({ did, ops })
}

function at(hours) {
  return new Date(Date.UTC(2024, 0, 1) + hours * HOUR).toISOString()
}

async function scenarios() {
  const signingKey = await crypto.Secp256k1Keypair.create()
  const rotation1 = await crypto.Secp256k1Keypair.create()
  const rotation2 = await crypto.P256Keypair.create()
  const attacker = await crypto.Secp256k1Keypair.create()
  const out = []

  const genesisFor = () =>
    plc.createOp({
      signingKey: signingKey.did(),
      handle: 'alice.example.com',
      pds: 'https://pds.example.com',
      rotationKeys: [rotation1.did(), rotation2.did()],
      signer: rotation1,
    })

  // 1. genesis and ordinary updates, the last a tombstone-free state
  {
    const { op, did } = await genesisFor()
    const audit = []
    await append(did, audit, op, at(0))
    let last = op
    last = await plc.updateHandleOp(last, rotation2, 'alice2.example.com')
    await append(did, audit, last, at(1))
    last = await plc.updatePdsOp(last, rotation1, 'https://pds2.example.com')
    await append(did, audit, last, at(2))
    last = await plc.updateAtprotoKeyOp(last, rotation1, (await crypto.P256Keypair.create()).did())
    await append(did, audit, last, at(3))
    last = await plc.updateRotationKeysOp(last, rotation2, [rotation2.did(), rotation1.did(), attacker.did()])
    await append(did, audit, last, at(4))
    out.push({ name: 'updates', did, audit, expect: await finalState(did, audit) })
  }

  // 2. recovery: rotation2 (lower priority) rotates everything away, then
  //    rotation1 forks from genesis within 72 hours, nullifying two ops.
  {
    const { op, did } = await genesisFor()
    const audit = []
    await append(did, audit, op, at(0))
    const hijack = await plc.updateRotationKeysOp(op, rotation2, [attacker.did()])
    await append(did, audit, hijack, at(10))
    const further = await plc.updateHandleOp(hijack, attacker, 'mallory.example.com')
    await append(did, audit, further, at(11))
    const recovery = await plc.updatePdsOp(op, rotation1, 'https://recovered.example.com')
    await append(did, audit, recovery, at(10 + 71))
    out.push({ name: 'recovery', did, audit, expect: await finalState(did, audit) })
  }

  // 3. tombstone after an update
  {
    const { op, did } = await genesisFor()
    const audit = []
    await append(did, audit, op, at(0))
    const update = await plc.updateHandleOp(op, rotation1, 'bob.example.com')
    await append(did, audit, update, at(1))
    const tomb = await plc.tombstoneOp(await cidOf(update), rotation2)
    await append(did, audit, tomb, at(2))
    out.push({ name: 'tombstone', did, audit, expect: await finalState(did, audit) })
  }

  // 4. legacy `create` genesis, then a regular update
  {
    const legacy = await plc.deprecatedSignCreate(
      {
        type: 'create',
        signingKey: signingKey.did(),
        recoveryKey: rotation1.did(),
        handle: 'carol.example.com',
        service: 'https://pds.example.com',
        prev: null,
      },
      signingKey,
    )
    const did = await plc.didForCreateOp(legacy)
    const audit = []
    await append(did, audit, legacy, at(0))
    const update = await plc.updateHandleOp(legacy, rotation1, 'carol2.example.com')
    await append(did, audit, update, at(5))
    out.push({ name: 'legacy-create', did, audit, expect: await finalState(did, audit) })
  }

  // 5. a recovery attempted too late (73 hours): the reference refuses it;
  //    the audit log holds what was accepted, plus the refused operation.
  {
    const { op, did } = await genesisFor()
    const audit = []
    await append(did, audit, op, at(0))
    const hijack = await plc.updateRotationKeysOp(op, rotation2, [attacker.did()])
    await append(did, audit, hijack, at(10))
    const recovery = await plc.updatePdsOp(op, rotation1, 'https://recovered.example.com')
    let refused
    try {
      await append(did, audit, recovery, at(10 + 73))
      refused = { ok: true }
    } catch (err) {
      refused = errorResult(err)
    }
    out.push({ name: 'late-recovery', did, audit, expect: await finalState(did, audit), late: { operation: recovery, createdAt: at(83), result: refused } })
  }
  return out
}

const commands = { inspect, submit, validate, verify, doc, scenarios }

const input = await readInput()
const results = []
for (const c of input.cases) {
  const fn = commands[c.cmd]
  if (!fn) throw new Error(`unknown command ${c.cmd}`)
  results.push(await fn(c))
}
writeOutput(results)
