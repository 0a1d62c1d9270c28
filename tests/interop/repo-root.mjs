// Cross-implementation checks for the MST and commits of
// crates/atp-repo-mst against the reference @atproto/repo.
//
// Input:
//   {
//     "records": [[key, cid], ...],          added one by one with MST.add
//     "changes": [{"action": "update"|"delete", "key", "cid"?}, ...],
//     "commit": {"privHex", "did", "rev", "oursHex"}   (optional)
//   }
// Output:
//   {
//     "rootAfterAdds", "rootAfterChanges",
//     "nodeCids": sorted CIDs of every node of the final tree,
//     "commit": {"oursValid", "oursData", "oursRev", "referenceHex"}
//   }
// `commit` checks a commit signed by the Rust side (secp256k1 key): the
// reference decodes it, verifies its signature against the did:key and
// signs the same fields itself (deterministic ECDSA), for a byte compare.

import { MST, MemoryBlockstore, signCommit, verifyCommitSig } from '@atproto/repo'
import { Secp256k1Keypair } from '@atproto/crypto'
import * as cbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { readInput, writeOutput, hex } from './lib/io.mjs'

const input = await readInput()
const storage = new MemoryBlockstore()

let mst = await MST.create(storage)
for (const [key, cid] of input.records) {
  mst = await mst.add(key, CID.parse(cid))
}
const rootAfterAdds = (await mst.getPointer()).toString()

for (const change of input.changes ?? []) {
  if (change.action === 'update') {
    mst = await mst.update(change.key, CID.parse(change.cid))
  } else if (change.action === 'delete') {
    mst = await mst.delete(change.key)
  } else {
    throw new Error(`unknown action ${change.action}`)
  }
}
const rootAfterChanges = (await mst.getPointer()).toString()
const { blocks } = await mst.getUnstoredBlocks()
const nodeCids = blocks.entries().map((e) => e.cid.toString()).sort()

let commit = null
if (input.commit) {
  const { privHex, did, rev, oursHex } = input.commit
  const keypair = await Secp256k1Keypair.import(privHex)
  const ours = cbor.decode(hex.decode(oursHex))
  const oursValid = await verifyCommitSig(ours, keypair.did())
  const reference = await signCommit(
    { did, version: 3, rev, prev: null, data: CID.parse(rootAfterChanges) },
    keypair,
  )
  commit = {
    oursValid,
    oursData: ours.data.toString(),
    oursRev: ours.rev,
    oursReencodes: hex.encode(cbor.encode(ours)) === oursHex,
    referenceHex: hex.encode(cbor.encode(reference)),
  }
}

writeOutput({ rootAfterAdds, rootAfterChanges, nodeCids, commit })
