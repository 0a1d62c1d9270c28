// The PDS and its peers: app.bsky.* calls proxied to the AppView with a
// service-auth token the AppView verifies (the stand-in AppView run.mjs
// starts checks it with verifyJwt from @atproto/xrpc-server, resolving the
// caller at the run's directory), and the relays (PDS_CRAWLERS) told to
// crawl the PDS with com.atproto.sync.requestCrawl.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createAccount, env, sleep, step, timedFetch } from '../lib/harness.mjs'
import { APPVIEW_DISPLAY_NAME } from '../lib/standins.mjs'

async function seen(url) {
  const res = await timedFetch(`${url}/_seen`)
  assert.equal(res.status, 200)
  return (await res.json()).seen
}

test('getProfile goes through the PDS to the AppView, with a service token it verifies', step, async () => {
  const alice = await createAccount('proxy')
  const before = (await seen(env.appViewUrl)).length
  const res = await alice.agent.app.bsky.actor.getProfile({ actor: alice.did })
  assert.equal(res.data.did, alice.did)
  assert.equal(res.data.displayName, APPVIEW_DISPLAY_NAME)
  assert.equal(res.data.description, `asked by ${alice.did}`)
  assert.equal(res.data.followersCount, 7)

  const calls = (await seen(env.appViewUrl)).slice(before)
  assert.equal(calls.length, 1, `the AppView saw ${JSON.stringify(calls)}`)
  const [call] = calls
  assert.equal(call.nsid, 'app.bsky.actor.getProfile')
  assert.deepEqual(call.params, { actor: alice.did })
  assert.equal(call.verified, true, `the AppView refused the token: ${call.refusal}`)
  assert.equal(call.iss, alice.did)
  assert.equal(call.lxm, 'app.bsky.actor.getProfile')
  // the reference names the DID alone, without the service fragment
  assert.equal(call.aud, env.appViewDid)
})

test('the atproto-proxy header names the AppView service explicitly', step, async () => {
  const bob = await createAccount('proxyb')
  const before = (await seen(env.appViewUrl)).length
  const res = await bob.agent.app.bsky.actor.getProfile(
    { actor: bob.handle },
    { headers: { 'atproto-proxy': `${env.appViewDid}#bsky_appview` } },
  )
  assert.equal(res.data.displayName, APPVIEW_DISPLAY_NAME)
  assert.equal(res.data.handle, bob.handle)
  const [call] = (await seen(env.appViewUrl)).slice(before)
  assert.ok(call, 'the AppView saw no request')
  assert.equal(call.verified, true, `the AppView refused the token: ${call.refusal}`)
  assert.equal(call.iss, bob.did)
  assert.equal(call.aud, env.appViewDid)
})

test('the relay is asked to crawl the PDS by its hostname', step, async () => {
  const carol = await createAccount('crawl')
  await carol.agent.post({ text: 'crawl me', createdAt: new Date().toISOString() })
  const deadline = Date.now() + 10_000
  let calls = []
  while (Date.now() < deadline) {
    calls = await seen(env.relayUrl)
    if (calls.length > 0) break
    await sleep(200)
  }
  assert.ok(calls.length > 0, 'the relay received no requestCrawl')
  for (const call of calls) {
    assert.equal(call.method, 'POST')
    assert.match(call.contentType || '', /^application\/json/)
    assert.deepEqual(call.body, { hostname: new URL(env.pdsUrl).hostname })
  }
})
