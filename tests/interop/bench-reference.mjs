// Measures the reference TypeScript implementation on the same workloads as
// the criterion benchmarks in benches/, so that docs/benchmarks.md can show
// both side by side from one run. Prints one JSON object: name -> ops/s.
//
// Usage: node bench-reference.mjs [records]   (default 100000)

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

const records = Number(process.argv[2] ?? 100000)
const results = {}

// Runs `fn` repeatedly for about `seconds` and returns operations per second.
async function rate(fn, seconds = 2) {
  let ops = 0
  const start = performance.now()
  const end = start + seconds * 1000
  while (performance.now() < end) {
    await fn()
    ops++
  }
  return ops / ((performance.now() - start) / 1000)
}

// --- signatures --------------------------------------------------------
const message = new TextEncoder().encode('a commit is about this long: '.repeat(4))
for (const [name, Keypair] of [
  ['k256', Secp256k1Keypair],
  ['p256', P256Keypair],
]) {
  const key = await Keypair.create()
  const did = key.did()
  const sig = await key.sign(message)
  results[`sign_${name}`] = await rate(() => key.sign(message))
  results[`verify_${name}`] = await rate(() => verifySignature(did, message, sig))
}

// --- DAG-CBOR of a typical post ---------------------------------------
const postJson = JSON.parse(
  readFileSync(new URL('../../benches/data/post.json', import.meta.url), 'utf8'),
)
const post = structuredClone(postJson)
for (const image of post.embed.images) {
  image.image.ref = CID.parse(image.image.ref.$link)
}
const postBytes = dagCbor.encode(post)
results.post_encode = await rate(() => dagCbor.encode(post))
results.post_decode = await rate(() => dagCbor.decode(postBytes))
results.post_cid = await rate(async () =>
  CID.create(1, 0x71, await sha256.digest(dagCbor.encode(post))),
)

// --- MST: insert `records` keys, then compute the root -------------------
// Keys: app.bsky.feed.post/<TID>, TIDs from increasing microsecond stamps.
const S32 = '234567abcdefghijklmnopqrstuvwxyz'
function tid(micros, clock) {
  let n = (BigInt(micros) << 10n) | BigInt(clock)
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = S32[Number(n & 31n)] + out
    n >>= 5n
  }
  return out
}
const values = []
for (let i = 0; i < records; i++) {
  const bytes = dagCbor.encode({ $type: 'app.bsky.feed.post', text: `record ${i}`, createdAt: '2026-11-24T08:00:00.000Z' })
  values.push(CID.create(1, 0x71, await sha256.digest(bytes)))
}
const keys = values.map((_, i) => `app.bsky.feed.post/${tid(1764000000000000 + i * 1000, 7)}`)
const storage = new MemoryBlockstore()
let start = performance.now()
let mst = await MST.create(storage)
for (let i = 0; i < records; i++) {
  mst = await mst.add(keys[i], values[i])
}
const root = await mst.getPointer()
let seconds = (performance.now() - start) / 1000
results.mst_insert_per_sec = records / seconds
results.mst_build_seconds = seconds
results.mst_root = root.toString()

// --- CAR export and import of the same tree ----------------------------
const { blocks } = await mst.getUnstoredBlocks()
start = performance.now()
const car = await blocksToCarFile(root, blocks)
seconds = (performance.now() - start) / 1000
results.car_export_seconds = seconds
results.car_bytes = car.length
start = performance.now()
const loaded = await readCarWithRoot(car)
seconds = (performance.now() - start) / 1000
results.car_import_seconds = seconds
results.car_blocks = loaded.blocks.size

results.records = records
results.node = process.version
process.stdout.write(JSON.stringify(results, null, 2) + '\n')
