// Records and blobs through the official client: posts (with an image),
// likes, follows, the profile, compare-and-swap, batches, deletion, paging,
// the refusals around them, blob lifetime, and the repository and record
// proofs the sync methods serve, checked with @atproto/repo.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'

import { verifyProofs, verifyRepoCar } from '@atproto/repo'
import { CID } from 'multiformats/cid'

import { createAccount, env, idResolver, newAgent, refused, step, timedFetch } from '../lib/harness.mjs'

let alice // set by the first test
let bob
const made = {} // what earlier steps made, for later ones

function need(value, what) {
  assert.ok(value, `needs ${what} from an earlier step, which failed`)
  return value
}

const now = () => new Date().toISOString()

/** A tiny valid PNG (1x1) followed by random bytes, so each is unique. */
function pngBytes(extra = 16) {
  const png = Buffer.from(
    '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201b2a1a5e40000000049454e44ae426082',
    'hex',
  )
  return new Uint8Array(Buffer.concat([png, randomBytes(extra)]))
}

async function listAllBlobs(did) {
  const res = await newAgent().com.atproto.sync.listBlobs({ did, limit: 1000 })
  return res.data.cids
}

test('two accounts for the record steps', step, async () => {
  alice = await createAccount('rec')
  bob = await createAccount('recb')
})

test('a post: createRecord, getRecord reads it back with the same CID', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const res = await agent.post({ text: 'hello from the e2e suite', createdAt: now() })
  assert.match(res.uri, new RegExp(`^at://${did}/app\\.bsky\\.feed\\.post/[a-z2-7]{13}$`))
  const rkey = res.uri.split('/').pop()
  const got = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
  assert.equal(got.data.uri, res.uri)
  assert.equal(got.data.cid, res.cid)
  assert.equal(got.data.value.text, 'hello from the e2e suite')
  made.post = res
})

test('a post with an image: uploadBlob, a post embedding it, getBlob returns the bytes', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const bytes = pngBytes()
  const up = await agent.uploadBlob(bytes, { encoding: 'image/png' })
  const blob = up.data.blob
  assert.equal(blob.mimeType, 'image/png')
  assert.equal(blob.size, bytes.length)
  const cid = blob.ref.toString()
  assert.match(cid, /^bafkrei[a-z2-7]+$/)
  const res = await agent.post({
    text: 'with a picture',
    createdAt: now(),
    embed: { $type: 'app.bsky.embed.images', images: [{ image: blob, alt: 'one pixel' }] },
  })
  const got = await agent.com.atproto.repo.getRecord({
    repo: did,
    collection: 'app.bsky.feed.post',
    rkey: res.uri.split('/').pop(),
  })
  const image = got.data.value.embed.images[0].image
  assert.equal(image.ref.toString(), cid)
  assert.equal(image.mimeType, 'image/png')

  const raw = await timedFetch(`${env.pdsUrl}/xrpc/com.atproto.sync.getBlob?did=${did}&cid=${cid}`)
  assert.equal(raw.status, 200)
  assert.match(raw.headers.get('content-type') || '', /^image\/png/)
  assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), bytes)
  assert.ok((await listAllBlobs(did)).includes(cid), 'listBlobs lacks the embedded blob')
  made.imagePost = res
  made.imageCid = cid
})

test('a like and a follow', step, async () => {
  const { agent } = need(alice, 'the accounts')
  const post = need(made.post, 'the post')
  const like = await agent.like(post.uri, post.cid)
  assert.match(like.uri, /\/app\.bsky\.feed\.like\//)
  const follow = await agent.follow(need(bob, 'the accounts').did)
  assert.match(follow.uri, /\/app\.bsky\.graph\.follow\//)
  const likes = await agent.com.atproto.repo.listRecords({ repo: alice.did, collection: 'app.bsky.feed.like' })
  assert.deepEqual(likes.data.records.map((r) => r.uri), [like.uri])
  assert.equal(likes.data.records[0].value.subject.uri, post.uri)
  made.like = like
  made.follow = follow
})

test('the profile with an avatar: putRecord app.bsky.actor.profile/self', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const up = await agent.uploadBlob(pngBytes(), { encoding: 'image/png' })
  const put = await agent.com.atproto.repo.putRecord({
    repo: did,
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    record: { $type: 'app.bsky.actor.profile', displayName: 'Alice', avatar: up.data.blob },
  })
  assert.equal(put.data.uri, `at://${did}/app.bsky.actor.profile/self`)
  const got = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.actor.profile', rkey: 'self' })
  assert.equal(got.data.cid, put.data.cid)
  assert.equal(got.data.value.displayName, 'Alice')
  assert.equal(got.data.value.avatar.ref.toString(), up.data.blob.ref.toString())
  // upsert: the same key again replaces it
  const again = await agent.com.atproto.repo.putRecord({
    repo: did,
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    record: { $type: 'app.bsky.actor.profile', displayName: 'Alice A.', avatar: up.data.blob },
  })
  assert.notEqual(again.data.cid, put.data.cid)
  made.profileCid = again.data.cid
})

test('putRecord with swapRecord: the current CID wins, a stale one is InvalidSwap', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const current = need(made.profileCid, 'the profile')
  const swapped = await agent.com.atproto.repo.putRecord({
    repo: did,
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    swapRecord: current,
    record: { $type: 'app.bsky.actor.profile', displayName: 'Alice (swapped)' },
  })
  assert.notEqual(swapped.data.cid, current)
  await refused(
    agent.com.atproto.repo.putRecord({
      repo: did,
      collection: 'app.bsky.actor.profile',
      rkey: 'self',
      swapRecord: current, // stale now
      record: { $type: 'app.bsky.actor.profile', displayName: 'lost update' },
    }),
    { error: 'InvalidSwap', status: 400 },
  )
  const got = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.actor.profile', rkey: 'self' })
  assert.equal(got.data.value.displayName, 'Alice (swapped)')
  assert.equal(got.data.cid, swapped.data.cid)
})

test('applyWrites: creates, an update and a delete in one commit', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const before = await agent.com.atproto.repo.describeRepo({ repo: did })
  const res = await agent.com.atproto.repo.applyWrites({
    repo: did,
    writes: [
      {
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: 'batch one', createdAt: now() },
      },
      {
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: 'batch two', createdAt: now() },
      },
      {
        $type: 'com.atproto.repo.applyWrites#update',
        collection: 'app.bsky.actor.profile',
        rkey: 'self',
        value: { $type: 'app.bsky.actor.profile', displayName: 'Alice (batched)' },
      },
      {
        $type: 'com.atproto.repo.applyWrites#delete',
        collection: 'app.bsky.feed.like',
        rkey: need(made.like, 'the like').uri.split('/').pop(),
      },
    ],
  })
  assert.match(res.data.commit.cid, /^bafyrei/)
  assert.deepEqual(
    res.data.results.map((r) => r.$type),
    [
      'com.atproto.repo.applyWrites#createResult',
      'com.atproto.repo.applyWrites#createResult',
      'com.atproto.repo.applyWrites#updateResult',
      'com.atproto.repo.applyWrites#deleteResult',
    ],
  )
  const [first, second] = res.data.results.map((r) => r.uri?.split('/').pop())
  assert.equal(res.data.results[0].uri, `at://${did}/app.bsky.feed.post/${first}`)
  made.batchSecond = second
  const one = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey: first })
  assert.equal(one.data.cid, res.data.results[0].cid)
  const profile = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.actor.profile', rkey: 'self' })
  assert.equal(profile.data.value.displayName, 'Alice (batched)')
  const likes = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.like' })
  assert.deepEqual(likes.data.records, [])
  // the like collection is empty, so describeRepo no longer names it
  const after = await agent.com.atproto.repo.describeRepo({ repo: did })
  assert.ok(before.data.collections.includes('app.bsky.feed.like'))
  assert.ok(!after.data.collections.includes('app.bsky.feed.like'))
})

test('deleteRecord removes a record; getRecord of it is RecordNotFound', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const rkey = need(made.batchSecond, 'the batch')
  await agent.com.atproto.repo.deleteRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
  await refused(agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey }), {
    error: 'RecordNotFound',
    status: 400,
    message: /Could not locate record/,
  })
  // and one that never existed
  await refused(agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey: '3jzfcijpj2z2a' }), {
    error: 'RecordNotFound',
    status: 400,
  })
})

test('listRecords pages forwards and backwards with cursor and reverse', step, async () => {
  const { agent, did } = need(bob, 'the accounts')
  const rkeys = []
  for (let i = 0; i < 5; i++) {
    const res = await agent.com.atproto.repo.createRecord({
      repo: did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text: `paged ${i}`, createdAt: now() },
    })
    rkeys.push(res.data.uri.split('/').pop())
  }
  // TIDs sort in creation order
  assert.deepEqual([...rkeys].sort(), rkeys)
  const page = async (reverse) => {
    const seen = []
    let cursor
    for (let n = 0; n < 10; n++) {
      const res = await agent.com.atproto.repo.listRecords({
        repo: did,
        collection: 'app.bsky.feed.post',
        limit: 2,
        cursor,
        reverse,
      })
      assert.ok(res.data.records.length <= 2)
      seen.push(...res.data.records.map((r) => r.uri.split('/').pop()))
      cursor = res.data.cursor
      if (!cursor || res.data.records.length === 0) break
    }
    return seen
  }
  // default order: newest first
  assert.deepEqual(await page(false), [...rkeys].reverse())
  assert.deepEqual(await page(true), rkeys)
})

test('describeRepo names the collections and the handle', step, async () => {
  const { agent, did, handle } = need(alice, 'the accounts')
  const res = await agent.com.atproto.repo.describeRepo({ repo: did })
  assert.equal(res.data.did, did)
  assert.equal(res.data.handle, handle)
  assert.equal(res.data.didDoc.id, did)
  assert.deepEqual(
    [...res.data.collections].sort(),
    ['app.bsky.actor.profile', 'app.bsky.feed.post', 'app.bsky.graph.follow'],
  )
})

test("a write into another account's repository is refused", step, async () => {
  const { agent } = need(alice, 'the accounts')
  const err = await refused(
    agent.com.atproto.repo.createRecord({
      repo: need(bob, 'the accounts').did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text: 'not mine', createdAt: now() },
    }),
    { status: 401 },
  )
  assert.equal(err.error, 'AuthenticationRequired')
  const list = await agent.com.atproto.repo.listRecords({ repo: bob.did, collection: 'app.bsky.feed.post' })
  assert.ok(list.data.records.every((r) => r.value.text !== 'not mine'))
})

test('a malformed body is a 400 with the error envelope', step, async () => {
  const { session } = need(alice, 'the accounts')
  const res = await timedFetch(`${env.pdsUrl}/xrpc/com.atproto.repo.createRecord`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.agent.session.accessJwt}`, 'content-type': 'application/json' },
    body: '{"repo": "' + session.did + '", "collection": ',
  })
  assert.equal(res.status, 400)
  const body = await res.json()
  // the reference names the JSON parser's error (SyntaxError)
  assert.equal(typeof body.error, 'string')
  assert.ok(body.error.length > 0)
  assert.equal(typeof body.message, 'string')
  // a well-formed body that misses a required field, too
  const res2 = await timedFetch(`${env.pdsUrl}/xrpc/com.atproto.repo.createRecord`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.agent.session.accessJwt}`, 'content-type': 'application/json' },
    body: JSON.stringify({ repo: session.did, record: { text: 'x' } }),
  })
  assert.equal(res2.status, 400)
  const body2 = await res2.json()
  assert.equal(body2.error, 'InvalidRequest')
  assert.match(body2.message, /collection/)
})

test('a blob over the upload limit is refused', step, async () => {
  const { session } = need(alice, 'the accounts')
  const bytes = randomBytes(env.blobUploadLimit + 1000)
  const res = await timedFetch(`${env.pdsUrl}/xrpc/com.atproto.repo.uploadBlob`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.agent.session.accessJwt}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  })
  const text = await res.text()
  assert.equal(res.status, 413, `HTTP ${res.status}: ${text}`)
  const body = JSON.parse(text)
  assert.equal(body.error, 'PayloadTooLarge')
  assert.equal(typeof body.message, 'string')
  assert.ok(session.did)
})

test('a blob that loses its last reference leaves listBlobs; getBlob: not found', step, async () => {
  const { agent, did } = need(alice, 'the accounts')
  const post = need(made.imagePost, 'the image post')
  const cid = made.imageCid
  await agent.deletePost(post.uri)
  assert.ok(!(await listAllBlobs(did)).includes(cid), 'listBlobs still names the blob')
  // the reference answers InvalidRequest "Blob not found" (the lexicon's
  // name for it is BlobNotFound)
  const err = await refused(newAgent().com.atproto.sync.getBlob({ did, cid }), { status: 400, message: /Blob not found/i })
  assert.ok(['InvalidRequest', 'BlobNotFound'].includes(err.error), `error ${err.error}`)
})

test('getRepo passes verifyRepoCar: every record, signed by the DID key', step, async () => {
  const { did } = need(alice, 'the accounts')
  const data = await idResolver.did.resolveAtprotoData(did, true)
  const res = await newAgent().com.atproto.sync.getRepo({ did })
  const verified = await verifyRepoCar(new Uint8Array(res.data), did, data.signingKey)
  const head = await newAgent().com.atproto.sync.getLatestCommit({ did })
  assert.equal(verified.commit.rev, head.data.rev)
  assert.equal(verified.commit.cid.toString(), head.data.cid)
  // every record the repository lists is in the CAR with the same CID
  const listed = []
  for (const collection of ['app.bsky.feed.post', 'app.bsky.graph.follow', 'app.bsky.actor.profile']) {
    const list = await alice.agent.com.atproto.repo.listRecords({ repo: did, collection, limit: 100 })
    for (const r of list.data.records) listed.push(`${collection}/${r.uri.split('/').pop()}=${r.cid}`)
  }
  const inCar = []
  for (const entry of verified.creates) inCar.push(`${entry.collection}/${entry.rkey}=${entry.cid.toString()}`)
  assert.deepEqual(inCar.sort(), listed.sort())
})

test('sync.getRecord passes verifyProofs, for a record and for a missing one', step, async () => {
  const { did } = need(alice, 'the accounts')
  const post = need(made.post, 'the post')
  const rkey = post.uri.split('/').pop()
  const data = await idResolver.did.resolveAtprotoData(did, true)
  const res = await newAgent().com.atproto.sync.getRecord({ did, collection: 'app.bsky.feed.post', rkey })
  const claim = { collection: 'app.bsky.feed.post', rkey, cid: CID.parse(post.cid) }
  const checked = await verifyProofs(new Uint8Array(res.data), [claim], did, data.signingKey)
  assert.equal(checked.verified.length, 1)
  assert.equal(checked.unverified.length, 0)
  // a wrong CID is not proven by the same proof
  const wrong = { ...claim, cid: CID.parse(need(made.profileCid, 'the profile')) }
  const checkedWrong = await verifyProofs(new Uint8Array(res.data), [wrong], did, data.signingKey)
  assert.equal(checkedWrong.verified.length, 0)

  // the proof of absence of a deleted record
  const goneKey = need(made.batchSecond, 'the batch')
  const gone = await newAgent().com.atproto.sync.getRecord({ did, collection: 'app.bsky.feed.post', rkey: goneKey })
  const absent = { collection: 'app.bsky.feed.post', rkey: goneKey, cid: null }
  const checkedAbsent = await verifyProofs(new Uint8Array(gone.data), [absent], did, data.signingKey)
  assert.equal(checkedAbsent.verified.length, 1)
})
