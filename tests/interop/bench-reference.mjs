// Measures the reference TypeScript implementation on the same workloads as
// the criterion benchmarks in benches/, so that docs/benchmarks.md can show
// both side by side from one run.
//
// Usage:
//   node bench-reference.mjs RECORDS   measure; prints one JSON object of
//                                      rates (per second) and seconds
//   node bench-reference.mjs < input   workload mode, for the Rust test
//                                      benches/tests/same_workload.rs: reads
//                                      {"records": N}, prints what the
//                                      workloads produce (bytes, roots, CAR)
//                                      without timing anything
//
// The workloads (keep them in step with benches/lib.rs):
// - signatures: sign and verify (from the did:key string) a 116-byte message
//   per curve;
// - DAG-CBOR: encode, decode and CID (encode + sha-256) of
//   benches/data/post.json;
// - MST: keys app.bsky.feed.post/<TID>, TIDs from microsecond stamps
//   1764000000000000 + i * 1000 with clock id 7, each value the CID of
//   {$type: "app.bsky.feed.post", text: "record <i>", createdAt}; insert all
//   then compute the root;
// - CAR: the tree's node blocks written with the root as the CAR root
//   (blocksToCarFile), and read back with every block checked
//   (readCarWithRoot).

import { readFileSync } from 'node:fs'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  P256Keypair,
  Secp256k1Keypair,
  verifySignature,
} from '@atproto/crypto'
import {
  MST,
  MemoryBlockstore,
  blocksToCarFile,
  readCarWithRoot,
} from '@atproto/repo'
import { readInput, writeOutput, hex } from './lib/io.mjs'

const MESSAGE = new TextEncoder().encode('a commit is about this long: '.repeat(4))
const FIRST_TID_MICROS = 1764000000000000n
const TID_STEP_MICROS = 1000n
const TID_CLOCK_ID = 7n
const CREATED_AT = '2026-11-24T08:00:00.000Z'

// The post of benches/data/post.json with its blob ref as a CID.
function postValue() {
  const post = JSON.parse(
    readFileSync(new URL('../../benches/data/post.json', import.meta.url), 'utf8'),
  )
  for (const image of post.embed.images) {
    image.image.ref = CID.parse(image.image.ref.$link)
  }
  return post
}

const S32 = '234567abcdefghijklmnopqrstuvwxyz'
function tid(index) {
  let n = ((FIRST_TID_MICROS + BigInt(index) * TID_STEP_MICROS) << 10n) | TID_CLOCK_ID
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = S32[Number(n & 31n)] + out
    n >>= 5n
  }
  return out
}

// The (key, value CID) pairs of the MST workload, in insertion order.
async function mstWorkload(records) {
  const keys = []
  const values = []
  for (let i = 0; i < records; i++) {
    const bytes = dagCbor.encode({
      $type: 'app.bsky.feed.post',
      text: `record ${i}`,
      createdAt: CREATED_AT,
    })
    values.push(CID.create(1, 0x71, await sha256.digest(bytes)))
    keys.push(`app.bsky.feed.post/${tid(i)}`)
  }
  return { keys, values }
}

async function buildMst(keys, values) {
  let mst = await MST.create(new MemoryBlockstore())
  for (let i = 0; i < keys.length; i++) {
    mst = await mst.add(keys[i], values[i])
  }
  const root = await mst.getPointer()
  return { mst, root }
}

// Runs `fn` repeatedly for about `seconds` (after a short warm-up) and
// returns operations per second.
async function rate(fn, seconds = 2) {
  const warmEnd = performance.now() + 300
  while (performance.now() < warmEnd) await fn()
  let ops = 0
  const start = performance.now()
  const end = start + seconds * 1000
  while (performance.now() < end) {
    await fn()
    ops++
  }
  return ops / ((performance.now() - start) / 1000)
}

// Mean wall time in seconds of `runs` calls of `fn`, after one warm-up call.
async function meanSeconds(fn, runs) {
  await fn()
  const start = performance.now()
  for (let i = 0; i < runs; i++) await fn()
  return (performance.now() - start) / 1000 / runs
}

async function measure(records) {
  const results = {}

  // --- signatures ------------------------------------------------------
  for (const [name, Keypair] of [
    ['k256', Secp256k1Keypair],
    ['p256', P256Keypair],
  ]) {
    const key = await Keypair.create()
    const did = key.did()
    const sig = await key.sign(MESSAGE)
    if (!(await verifySignature(did, MESSAGE, sig))) {
      throw new Error(`${name}: the signature does not verify`)
    }
    results[`sign_${name}`] = await rate(() => key.sign(MESSAGE))
    results[`verify_${name}`] = await rate(() => verifySignature(did, MESSAGE, sig))
  }

  // --- DAG-CBOR of a typical post -------------------------------------
  const post = postValue()
  const postBytes = dagCbor.encode(post)
  results.post_encode = await rate(() => dagCbor.encode(post))
  results.post_decode = await rate(() => dagCbor.decode(postBytes))
  results.post_cid = await rate(async () =>
    CID.create(1, 0x71, await sha256.digest(dagCbor.encode(post))),
  )

  // --- MST: insert `records` keys, then compute the root ---------------
  const { keys, values } = await mstWorkload(records)
  // Warm-up on a tenth of the keys, so the JIT has compiled the MST code.
  await buildMst(keys.slice(0, Math.ceil(records / 10)), values)
  let start = performance.now()
  const { mst, root } = await buildMst(keys, values)
  const seconds = (performance.now() - start) / 1000
  results.mst_insert_per_sec = records / seconds
  results.mst_build_seconds = seconds
  results.mst_root = root.toString()

  // --- CAR export and import of the same tree ---------------------------
  const { blocks } = await mst.getUnstoredBlocks()
  const car = await blocksToCarFile(root, blocks)
  results.car_export_seconds = await meanSeconds(() => blocksToCarFile(root, blocks), 3)
  results.car_bytes = car.length
  results.car_import_seconds = await meanSeconds(() => readCarWithRoot(car), 3)
  const loaded = await readCarWithRoot(car)
  if (!loaded.root.equals(root) || loaded.blocks.size !== blocks.size) {
    throw new Error('the CAR did not read back to the same tree')
  }
  results.car_blocks = loaded.blocks.size

  results.records = records
  results.node = process.version
  return results
}

// What the workloads produce, for the Rust side to compare with its own.
async function workload(records) {
  const post = postValue()
  const postBytes = dagCbor.encode(post)
  const { keys, values } = await mstWorkload(records)
  const { mst, root } = await buildMst(keys, values)
  const { blocks } = await mst.getUnstoredBlocks()
  const car = await blocksToCarFile(root, blocks)
  return {
    message: hex.encode(MESSAGE),
    post_bytes: hex.encode(postBytes),
    post_cid: CID.create(1, 0x71, await sha256.digest(postBytes)).toString(),
    keys: keys.slice(0, 3).concat(keys.slice(-1)),
    values: values.slice(0, 3).concat(values.slice(-1)).map((v) => v.toString()),
    mst_root: root.toString(),
    car: hex.encode(car),
  }
}

if (process.argv[2] === undefined) {
  const input = await readInput()
  writeOutput(await workload(Number(input?.records ?? 1000)))
} else {
  const records = Number(process.argv[2])
  if (!Number.isInteger(records) || records <= 0) {
    throw new Error(`not a record count: ${process.argv[2]}`)
  }
  process.stdout.write(JSON.stringify(await measure(records), null, 2) + '\n')
}
