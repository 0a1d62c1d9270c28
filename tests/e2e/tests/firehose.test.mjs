// The firehose (com.atproto.sync.subscribeRepos) read by the official
// consumer, `Firehose` from @atproto/sync, with authenticated commits (the
// signature checked against the DID document at the run's directory and
// every op inverted against the commit's blocks). A subscriber from cursor
// 0 connects before anything else here happens and must see every commit,
// identity and account event of the accounts this file makes, without an
// error; a second one connecting later with a cursor in the middle must
// receive exactly the events after it.

import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { decodeAll } from '@atproto/lex-cbor'
import { Firehose } from '@atproto/sync'

import { createAccount, env, idResolver, newAgent, sleep, step } from '../lib/harness.mjs'

const wsUrl = env.pdsUrl.replace(/^http/, 'ws')
const now = () => new Date().toISOString()

/** A Firehose subscriber that keeps every event and every error. */
function subscribe(cursor) {
  const sub = { events: [], errors: [], lastSeq: cursor }
  sub.firehose = new Firehose({
    idResolver,
    service: wsUrl,
    // on a reconnect, go on after the last event seen
    getCursor: () => sub.lastSeq,
    unauthenticatedHandles: true, // the .test handles do not resolve
    subscriptionReconnectDelay: 500,
    handleEvent: (evt) => {
      sub.events.push(evt)
      if (sub.lastSeq === undefined || evt.seq > sub.lastSeq) sub.lastSeq = evt.seq
    },
    onError: (err) => {
      sub.errors.push(`${err?.name}: ${err?.message}${err?.cause ? ` (${err.cause})` : ''}`)
    },
  })
  sub.running = sub.firehose.start()
  return sub
}

/**
 * A plain WebSocket subscriber that keeps the type and DID of every frame
 * (the Firehose class passes on no event for a commit without ops).
 */
function rawSubscribe(cursor) {
  const raw = { frames: [], errors: [] }
  const ws = new WebSocket(`${wsUrl}/xrpc/com.atproto.sync.subscribeRepos?cursor=${cursor}`)
  ws.binaryType = 'arraybuffer'
  ws.onmessage = (msg) => {
    try {
      const [header, body] = [...decodeAll(new Uint8Array(msg.data))]
      raw.frames.push({ t: header.t, op: header.op, did: body.did ?? body.repo, seq: body.seq, ops: body.ops?.length })
    } catch (err) {
      raw.errors.push(String(err?.message || err))
    }
  }
  ws.onerror = (evt) => raw.errors.push(`websocket error: ${evt?.message || evt?.type}`)
  raw.close = () => ws.close()
  return raw
}

/** One line per event, comparable between subscribers. */
function describe(evt) {
  switch (evt.event) {
    case 'create':
    case 'update':
      return `${evt.seq} ${evt.event} ${evt.uri.toString()} ${evt.cid.toString()} commit ${evt.commit.toString()}`
    case 'delete':
      return `${evt.seq} delete ${evt.uri.toString()} commit ${evt.commit.toString()}`
    case 'identity':
      return `${evt.seq} identity ${evt.did} ${evt.handle}`
    case 'account':
      return `${evt.seq} account ${evt.did} ${evt.active} ${evt.status}`
    default:
      return `${evt.seq} ${evt.event} ${evt.did}`
  }
}

/** Waits until `check()` is true (up to `ms`), else fails with `what()`. */
async function waitUntil(check, what, ms = 15_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return
    await sleep(100)
  }
  assert.fail(what())
}

let first // the subscriber from cursor 0
let raw // the plain one beside it
let second // the one that joins later
const accounts = []
const writes = [] // {commit, ops: [{action, uri, cid}]}
let middleSeq

after(async () => {
  for (const sub of [first, second]) if (sub) await sub.firehose.destroy()
  raw?.close()
})

test('a subscriber from cursor 0 connects before the writes', step, async () => {
  first = subscribe(0)
  raw = rawSubscribe(0)
  // the replay from 0 reaches it before anything below happens
  await sleep(1000)
  assert.deepEqual(first.errors, [])
})

test('accounts, records, a handle change and a deactivation are written', step, async () => {
  for (const prefix of ['fha', 'fhb']) accounts.push(await createAccount(prefix))
  const [a, b] = accounts
  const record = async (agent, did, collection, value, rkey) => {
    const res = await agent.com.atproto.repo.createRecord({ repo: did, collection, rkey, record: value })
    writes.push({ commit: res.data.commit.cid, ops: [{ action: 'create', uri: res.data.uri, cid: res.data.cid }] })
    return res.data
  }
  const post = await record(a.agent, a.did, 'app.bsky.feed.post', {
    $type: 'app.bsky.feed.post',
    text: 'on the firehose',
    createdAt: now(),
  })
  await record(b.agent, b.did, 'app.bsky.feed.like', {
    $type: 'app.bsky.feed.like',
    subject: { uri: post.uri, cid: post.cid },
    createdAt: now(),
  })
  await record(b.agent, b.did, 'app.bsky.graph.follow', {
    $type: 'app.bsky.graph.follow',
    subject: a.did,
    createdAt: now(),
  })
  // the middle: the second subscriber starts after this point
  await waitUntil(
    () => first.events.some((e) => e.commit?.toString() === writes.at(-1).commit),
    () => `the first subscriber has not seen commit ${writes.at(-1).commit}; errors ${JSON.stringify(first.errors)}`,
  )
  middleSeq = first.lastSeq

  // putRecord of a's profile: `action` is what the commit must say it did
  const putProfile = async (displayName, action) => {
    const put = await a.agent.com.atproto.repo.putRecord({
      repo: a.did,
      collection: 'app.bsky.actor.profile',
      rkey: 'self',
      record: { $type: 'app.bsky.actor.profile', displayName },
    })
    writes.push({ commit: put.data.commit.cid, ops: [{ action, uri: put.data.uri, cid: put.data.cid }] })
  }
  await putProfile('Firehose A', 'create')
  await putProfile('Firehose A, again', 'update')
  const del = await a.agent.com.atproto.repo.deleteRecord({
    repo: a.did,
    collection: 'app.bsky.feed.post',
    rkey: post.uri.split('/').pop(),
  })
  writes.push({ commit: del.data.commit.cid, ops: [{ action: 'delete', uri: post.uri }] })

  const batch = await b.agent.com.atproto.repo.applyWrites({
    repo: b.did,
    writes: [
      {
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: 'one', createdAt: now() },
      },
      {
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: 'two', createdAt: now() },
      },
    ],
  })
  writes.push({
    commit: batch.data.commit.cid,
    ops: batch.data.results.map((r) => ({ action: 'create', uri: r.uri, cid: r.cid })),
  })

  b.newHandle = `fhb${Date.now().toString(36).slice(-6)}.test`
  await b.agent.com.atproto.identity.updateHandle({ handle: b.newHandle })
  await a.agent.com.atproto.server.deactivateAccount({})
  await a.agent.com.atproto.server.activateAccount()
})

test('the first subscriber saw every commit, identity and account event, no errors', step, async () => {
  assert.ok(first && accounts.length === 2 && middleSeq, 'needs the earlier steps, which failed')
  const [a, b] = accounts
  const mine = (evt) => evt.did === a.did || evt.did === b.did
  const expected = [
    ...writes.flatMap((w) => w.ops.map((op) => `${op.action} ${op.uri} ${op.cid ?? ''} commit ${w.commit}`.replace('  ', ' '))),
  ]
  const seenOps = () =>
    first.events
      .filter((e) => mine(e) && ['create', 'update', 'delete'].includes(e.event))
      .map((e) => describe(e).replace(/^\d+ /, ''))
  const lastKinds = () => first.events.filter(mine).map((e) => e.event)
  await waitUntil(
    () =>
      seenOps().length >= expected.length &&
      lastKinds().filter((k) => k === 'account').length >= 4 &&
      lastKinds().filter((k) => k === 'identity').length >= 4,
    () =>
      `the first subscriber saw ${JSON.stringify(seenOps())}, kinds ${JSON.stringify(lastKinds())}; errors ${JSON.stringify(first.errors)}`,
  )
  assert.deepEqual(first.errors, [])
  assert.deepEqual(seenOps(), expected.map((line) => line.replace(/ +/g, ' ')))

  // identity: one per new account, and one for the handle change (the
  // consumer does not pass on an unverified handle, and .test handles do
  // not resolve)
  const identities = first.events.filter((e) => mine(e) && e.event === 'identity').map((e) => e.did)
  // (and activateAccount announces the identity again, as the reference does)
  assert.deepEqual(identities, [a.did, b.did, b.did, a.did])
  const docB = first.events.filter((e) => e.did === b.did && e.event === 'identity').at(-1).didDocument
  assert.deepEqual(docB?.alsoKnownAs, [`at://${b.newHandle}`])
  // account: active at creation (both), then A deactivated and active again
  const acc = first.events.filter((e) => mine(e) && e.event === 'account').map((e) => `${e.did} ${e.active} ${e.status}`)
  assert.deepEqual(acc, [
    `${a.did} true undefined`,
    `${b.did} true undefined`,
    `${a.did} false deactivated`,
    `${a.did} true undefined`,
  ])
  // sequence numbers only go up
  const seqs = first.events.map((e) => e.seq)
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] >= seqs[i - 1], `seq ${seqs[i]} after ${seqs[i - 1]}`)
  // each commit is signed for the rev the server reports now
  const head = await newAgent().com.atproto.sync.getLatestCommit({ did: b.did })
  const lastOfB = first.events.filter((e) => e.did === b.did && e.commit).at(-1)
  assert.equal(lastOfB.commit.toString(), head.data.cid)
  assert.equal(lastOfB.rev, head.data.rev)
})

test('the frames of each account, in order, as the reference sends them', step, async () => {
  assert.ok(raw && accounts.length === 2, 'needs the earlier steps, which failed')
  const [a, b] = accounts
  const kinds = (did) => raw.frames.filter((f) => f.did === did).map((f) => (f.t === '#commit' ? `#commit/${f.ops}` : f.t))
  // creation: identity, active, the empty first commit, then the #sync
  // announcing the repository's state
  const created = ['#identity', '#account', '#commit/0', '#sync']
  const expectA = [...created, '#commit/1', '#commit/1', '#commit/1', '#commit/1', '#account', '#account', '#identity', '#sync']
  const expectB = [...created, '#commit/1', '#commit/1', '#commit/2', '#identity']
  await waitUntil(
    () => kinds(a.did).length >= expectA.length && kinds(b.did).length >= expectB.length,
    () => `frames: A ${JSON.stringify(kinds(a.did))}, B ${JSON.stringify(kinds(b.did))}; errors ${JSON.stringify(raw.errors)}`,
  )
  assert.deepEqual(raw.errors, [])
  assert.deepEqual(kinds(a.did), expectA)
  assert.deepEqual(kinds(b.did), expectB)
  assert.ok(raw.frames.every((f) => f.op === 1), 'an error frame arrived')
})

test('a second subscriber from a cursor in the middle receives exactly the rest', step, async () => {
  assert.ok(first && middleSeq, 'needs the earlier steps, which failed')
  second = subscribe(middleSeq)
  const rest = () => first.events.filter((e) => e.seq > middleSeq).map(describe)
  await waitUntil(
    () => second.events.length > 0 && second.lastSeq >= first.lastSeq,
    () => `the second subscriber saw ${JSON.stringify(second.events.map(describe))}; expected ${JSON.stringify(rest())}; errors ${JSON.stringify(second.errors)}`,
  )
  // and nothing more arrives
  await sleep(500)
  assert.ok(rest().length >= 8, `expected the later events, got ${JSON.stringify(rest())}`)
  assert.deepEqual(second.errors, [])
  assert.deepEqual(second.events.map(describe), rest())
})
