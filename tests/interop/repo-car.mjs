// Repository CAR files checked by the reference implementation
// (@atproto/repo). Input: {op, ...}; output depends on op:
//
// - "verify-repo" {car, did, didKey}: verifyRepoCar with the DID and the
//   signing key; returns the records it found and the commit.
// - "generate" {did, privateKeyHex, creates, updates, deletes}: builds a
//   repository with Repo.create + applyWrites, exports it with getFullRepo;
//   returns the CAR and the records (path, CID).
// - "verify-diff" {prevCar, diffCar, did, didKey}: loads the earlier
//   repository from prevCar, then verifyDiffCar on diffCar; returns writes.
// - "verify-proofs" {car, claims: [{collection, rkey, cid|null}], did,
//   didKey}: verifyProofs; returns verified and unverified claims.
//
// All CARs travel as hex. Errors are reported as {error: message}.
import {
  MemoryBlockstore,
  Repo,
  WriteOpAction,
  getFullRepo,
  readCarWithRoot,
  verifyDiffCar,
  verifyProofs,
  verifyRepoCar,
} from '@atproto/repo'
import { Secp256k1Keypair } from '@atproto/crypto'
import { parseCid } from '@atproto/lex-data'
import { readInput, writeOutput, hex } from './lib/io.mjs'

async function collect(iterable) {
  const chunks = []
  for await (const chunk of iterable) chunks.push(chunk)
  return Buffer.concat(chunks.map((c) => Buffer.from(c)))
}

function describeWrites(writes) {
  return writes.map((w) => ({
    action: w.action,
    path: `${w.collection}/${w.rkey}`,
    cid: w.cid ? w.cid.toString() : null,
  }))
}

async function run(input) {
  switch (input.op) {
    case 'verify-repo': {
      const verified = await verifyRepoCar(hex.decode(input.car), input.did, input.didKey)
      return {
        ok: true,
        did: verified.commit.did ?? input.did,
        rev: verified.commit.rev,
        commitCid: verified.commit.cid.toString(),
        records: verified.creates
          .map((c) => ({ path: `${c.collection}/${c.rkey}`, cid: c.cid.toString() }))
          .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
      }
    }
    case 'generate': {
      const keypair = await Secp256k1Keypair.import(input.privateKeyHex)
      const storage = new MemoryBlockstore()
      let repo = await Repo.create(
        storage,
        input.did,
        keypair,
        input.creates.map((c) => ({
          action: WriteOpAction.Create,
          collection: c.collection,
          rkey: c.rkey,
          record: c.record,
        })),
      )
      const writes = [
        ...input.updates.map((u) => ({
          action: WriteOpAction.Update,
          collection: u.collection,
          rkey: u.rkey,
          record: u.record,
        })),
        ...input.deletes.map((d) => ({
          action: WriteOpAction.Delete,
          collection: d.collection,
          rkey: d.rkey,
        })),
      ]
      if (writes.length > 0) repo = await repo.applyWrites(writes, keypair)
      const car = await collect(getFullRepo(storage, repo.cid))
      const records = []
      for await (const entry of repo.data.walkLeavesFrom('')) {
        records.push({ path: entry.key, cid: entry.value.toString() })
      }
      return {
        car: hex.encode(car),
        commitCid: repo.cid.toString(),
        data: repo.commit.data.toString(),
        rev: repo.commit.rev,
        didKey: keypair.did(),
        records,
      }
    }
    case 'verify-diff': {
      const prev = await readCarWithRoot(hex.decode(input.prevCar))
      const storage = new MemoryBlockstore(prev.blocks)
      const repo = await Repo.load(storage, prev.root)
      const diff = await verifyDiffCar(repo, hex.decode(input.diffCar), input.did, input.didKey)
      return {
        ok: true,
        commitCid: diff.commit.cid.toString(),
        writes: describeWrites(diff.writes).sort((a, b) =>
          a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
        ),
      }
    }
    case 'verify-proofs': {
      const claims = input.claims.map((c) => ({
        collection: c.collection,
        rkey: c.rkey,
        cid: c.cid === null ? null : parseCid(c.cid),
      }))
      const result = await verifyProofs(hex.decode(input.car), claims, input.did, input.didKey)
      const show = (list) =>
        list.map((c) => ({
          path: `${c.collection}/${c.rkey}`,
          cid: c.cid === null ? null : c.cid.toString(),
        }))
      return { verified: show(result.verified), unverified: show(result.unverified) }
    }
    default:
      throw new Error(`unknown op ${input.op}`)
  }
}

const input = await readInput()
try {
  writeOutput(await run(input))
} catch (err) {
  writeOutput({ error: String(err && err.message ? err.message : err) })
}
