// The com.atproto.repo record methods of a Rust PDS used through the
// official client (@atproto/api's AtpAgent, which checks every answer
// against the lexicons and maps error names to its error classes).
// Input: {"service": "http://127.0.0.1:PORT", "identifier", "password"}.
// Output: what the client saw, step by step, for the Rust side to assert on.
import { AtpAgent, ComAtprotoRepoPutRecord, ComAtprotoRepoApplyWrites } from '@atproto/api'
import { readInput, writeOutput } from './lib/io.mjs'

const input = await readInput()
const agent = new AtpAgent({ service: input.service })
const out = {}

async function refusal(promise) {
  try {
    await promise
    return { refused: false }
  } catch (err) {
    return {
      refused: true,
      status: err.status ?? null,
      error: err.error ?? null,
      message: err.message ?? String(err),
      invalidSwapClass:
        err instanceof ComAtprotoRepoPutRecord.InvalidSwapError ||
        err instanceof ComAtprotoRepoApplyWrites.InvalidSwapError,
    }
  }
}

try {
  await agent.login({ identifier: input.identifier, password: input.password })
  // The DID document names the PDS's public URL, not this loopback port.
  agent.sessionManager.pdsUrl = undefined
  const did = agent.session.did
  const repo = agent.com.atproto.repo

  // agent.post: createRecord of an app.bsky.feed.post with a TID key.
  const posted = await agent.post({ text: 'hello from the reference client', createdAt: new Date().toISOString() })
  out.post = posted

  const got = await repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey: posted.uri.split('/').pop() })
  out.getRecord = got.data

  const put = await repo.putRecord({
    repo: did,
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    record: { $type: 'app.bsky.actor.profile', displayName: 'Client' },
    swapRecord: null,
  })
  out.putRecord = put.data
  out.putAgain = await refusal(
    repo.putRecord({
      repo: did,
      collection: 'app.bsky.actor.profile',
      rkey: 'self',
      record: { $type: 'app.bsky.actor.profile', displayName: 'Again' },
      swapRecord: null,
    }),
  )

  const applied = await repo.applyWrites({
    repo: did,
    writes: [
      { $type: 'com.atproto.repo.applyWrites#create', collection: 'com.example.thing', rkey: 'a', value: { n: 1 } },
      { $type: 'com.atproto.repo.applyWrites#create', collection: 'com.example.thing', rkey: 'b', value: { n: 2 } },
      { $type: 'com.atproto.repo.applyWrites#update', collection: 'app.bsky.actor.profile', rkey: 'self', value: { $type: 'app.bsky.actor.profile', displayName: 'Batch' } },
    ],
  })
  out.applyWrites = applied.data
  out.staleSwap = await refusal(
    repo.applyWrites({ repo: did, swapCommit: put.data.commit.cid, writes: [] }),
  )

  const listed = await repo.listRecords({ repo: did, collection: 'com.example.thing', limit: 1 })
  const next = await repo.listRecords({ repo: did, collection: 'com.example.thing', limit: 1, cursor: listed.data.cursor })
  out.listRecords = [listed.data, next.data]

  out.deleteRecord = (await repo.deleteRecord({ repo: did, collection: 'com.example.thing', rkey: 'a' })).data
  out.deleteAgain = (await repo.deleteRecord({ repo: did, collection: 'com.example.thing', rkey: 'a' })).data
  out.missing = await refusal(repo.getRecord({ repo: did, collection: 'com.example.thing', rkey: 'a' }))

  // Export with sync.getRepo, write once more, then import the export:
  // the repository is the export again.
  const exported = await agent.com.atproto.sync.getRepo({ did })
  await repo.createRecord({ repo: did, collection: 'com.example.thing', rkey: 'late', record: {} })
  await repo.importRepo(exported.data, { encoding: 'application/vnd.ipld.car' })
  out.afterImport = await refusal(repo.getRecord({ repo: did, collection: 'com.example.thing', rkey: 'late' }))
  out.importedCar = Buffer.from(exported.data).toString('hex')

  const described = await repo.describeRepo({ repo: input.identifier })
  out.describeRepo = described.data
  writeOutput(out)
} catch (err) {
  writeOutput({ ...out, error: String(err && err.stack ? err.stack : err) })
}
