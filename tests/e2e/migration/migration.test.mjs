// Account migration between the reference PDS and ours, both directions,
// the way the official client moves an account: a service token from the
// old PDS lets the new one create the account with the existing DID
// (deactivated), the repository is exported (sync.getRepo) and imported
// (importRepo), missing blobs are copied, the old PDS signs a PLC
// operation (with the code it mails) that the new one submits, then the
// new account is activated and the old one deactivated. Every record must
// read back identically (same CIDs) from the new PDS; the preferences come
// along too.
//
// Runs with E2E_TARGET=both (scripts/e2e-migration.sh): ours at
// E2E_PDS_URL, the reference at E2E_REFERENCE_PDS_URL.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'

import { verifyRepoCar } from '@atproto/repo'

import { env, idResolver, mailedToken, newAgent, newIdentity, refused, step } from '../lib/harness.mjs'

assert.ok(env.referencePdsUrl, 'the migration suite needs E2E_TARGET=both (scripts/e2e-migration.sh)')

const now = () => new Date().toISOString()

/** Creates an account on `service` with a few records and a blob. */
async function populatedAccount(service, prefix) {
  const id = newIdentity(prefix)
  const agent = newAgent(service)
  await agent.createAccount({ ...id })
  const did = agent.session.did
  const post = await agent.post({ text: `written at ${service}`, createdAt: now() })
  await agent.post({ text: 'a second post', createdAt: now() })
  await agent.like(post.uri, post.cid)
  const png = Buffer.concat([
    Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex'),
    randomBytes(24),
  ])
  const up = await agent.uploadBlob(new Uint8Array(png), { encoding: 'image/png' })
  await agent.com.atproto.repo.putRecord({
    repo: did,
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    record: { $type: 'app.bsky.actor.profile', displayName: prefix, avatar: up.data.blob },
  })
  const preferences = [
    { $type: 'app.bsky.actor.defs#adultContentPref', enabled: false },
    { $type: 'app.bsky.actor.defs#personalDetailsPref', birthDate: '1990-01-01T00:00:00.000Z' },
  ]
  await agent.app.bsky.actor.putPreferences({ preferences })
  return { ...id, did, agent, preferences, blobCid: up.data.blob.ref.toString(), blobBytes: png }
}

/**
 * The stored preferences (both PDSes add a declaredAgePref computed from
 * the birth date; it is not stored, so it is left out).
 */
async function storedPreferences(agent) {
  const res = await agent.app.bsky.actor.getPreferences()
  return res.data.preferences.filter((p) => p.$type !== 'app.bsky.actor.defs#declaredAgePref')
}

/** Every record of `did` at `agent`'s PDS: `collection/rkey` -> CID. */
async function allRecords(agent, did) {
  const desc = await agent.com.atproto.repo.describeRepo({ repo: did })
  const out = {}
  for (const collection of desc.data.collections) {
    let cursor
    do {
      const res = await agent.com.atproto.repo.listRecords({ repo: did, collection, limit: 100, cursor })
      for (const r of res.data.records) out[`${collection}/${r.uri.split('/').pop()}`] = r.cid
      cursor = res.data.records.length > 0 ? res.data.cursor : undefined
    } while (cursor)
  }
  return out
}

/** Moves `account` (logged in at its current PDS) to `toUrl`; returns the new agent. */
async function migrate(account, toUrl) {
  const from = account.agent
  const did = account.did
  const target = newAgent(toUrl)
  const described = await target.com.atproto.server.describeServer()
  const serviceDid = described.data.did

  // 1. the old PDS vouches for the DID to the new one
  const auth = await from.com.atproto.server.getServiceAuth({
    aud: serviceDid,
    lxm: 'com.atproto.server.createAccount',
  })
  const handle = `${account.handle.split('.')[0]}m.test`
  const created = await target.createAccount(
    { did, handle, email: account.email, password: account.password },
    { headers: { authorization: `Bearer ${auth.data.token}` } },
  )
  assert.equal(created.data.did, did)
  // the client sends a session's requests to the PDS its DID document
  // names, which is still the old one: talk to the new PDS directly
  target.sessionManager.pdsUrl = undefined
  let status = await target.com.atproto.server.checkAccountStatus()
  assert.equal(status.data.activated, false, 'the new account starts deactivated')
  assert.equal(status.data.validDid, false, 'the DID still points at the old PDS')

  // 2. the repository and its blobs
  const car = await from.com.atproto.sync.getRepo({ did })
  await target.com.atproto.repo.importRepo(new Uint8Array(car.data), { encoding: 'application/vnd.ipld.car' })
  const missing = await target.com.atproto.repo.listMissingBlobs({ limit: 100 })
  assert.deepEqual(
    missing.data.blobs.map((b) => b.cid),
    [account.blobCid],
  )
  for (const { cid } of missing.data.blobs) {
    const blob = await from.com.atproto.sync.getBlob({ did, cid })
    await target.uploadBlob(new Uint8Array(blob.data), { encoding: blob.headers['content-type'] })
  }
  const stillMissing = await target.com.atproto.repo.listMissingBlobs({ limit: 100 })
  assert.deepEqual(stillMissing.data.blobs, [])

  // the preferences, which live on the PDS, not in the repository
  const prefs = await storedPreferences(from)
  assert.deepEqual(prefs, account.preferences)
  await target.app.bsky.actor.putPreferences({ preferences: prefs })

  // 3. the identity: the old PDS signs what the new one recommends
  const creds = await target.com.atproto.identity.getRecommendedDidCredentials()
  await from.com.atproto.identity.requestPlcOperationSignature()
  const { token } = await mailedToken(account.email, /PLC|operation|identity/i)
  const signed = await from.com.atproto.identity.signPlcOperation({ token, ...creds.data })
  await target.com.atproto.identity.submitPlcOperation({ operation: signed.data.operation })
  const data = await idResolver.did.resolveAtprotoData(did, true)
  assert.equal(data.pds, toUrl)
  assert.equal(data.handle, handle)

  // 4. switch over
  status = await target.com.atproto.server.checkAccountStatus()
  assert.equal(status.data.validDid, true)
  await target.com.atproto.server.activateAccount()
  await from.com.atproto.server.deactivateAccount({})
  status = await target.com.atproto.server.checkAccountStatus()
  assert.equal(status.data.activated, true)
  // the old PDS no longer serves the repository
  await refused(newAgent(from.serviceUrl.origin).com.atproto.sync.getRepo({ did }), {
    error: 'RepoDeactivated',
    status: 400,
  })
  return { ...account, handle, agent: target, signingKey: data.signingKey }
}

/** The records and blob of `moved` at its new PDS equal `before`. */
async function checkArrived(moved, before, toUrl) {
  const after = await allRecords(moved.agent, moved.did)
  assert.deepEqual(after, before)
  for (const [key, cid] of Object.entries(before)) {
    const [collection, rkey] = key.split('/')
    const got = await moved.agent.com.atproto.repo.getRecord({ repo: moved.did, collection, rkey })
    assert.equal(got.data.cid, cid, `${key}`)
  }
  assert.deepEqual(await storedPreferences(moved.agent), moved.preferences)
  const blob = await newAgent(toUrl).com.atproto.sync.getBlob({ did: moved.did, cid: moved.blobCid })
  assert.deepEqual(Buffer.from(blob.data), moved.blobBytes)
  // a post written there now lands in the moved repository, in a commit
  // signed with the key the DID document lists now (the reference serves
  // the imported commit, signed by the old key, until the next write)
  const post = await moved.agent.post({ text: 'after the move', createdAt: now() })
  assert.match(post.uri, new RegExp(`^at://${moved.did}/`))
  const car = await newAgent(toUrl).com.atproto.sync.getRepo({ did: moved.did })
  const verified = await verifyRepoCar(new Uint8Array(car.data), moved.did, moved.signingKey)
  const inCar = Object.fromEntries(
    verified.creates.map((c) => [`${c.collection}/${c.rkey}`, c.cid.toString()]),
  )
  assert.deepEqual(inCar, { ...before, [`app.bsky.feed.post/${post.uri.split('/').pop()}`]: post.cid })
}

/** Creates an account with records (handle prefix `prefix`) on the PDS at
 * `fromUrl`, moves it to the one at `toUrl` and checks it arrived whole. */
async function moveAndCheck(fromUrl, toUrl, prefix) {
  const account = await populatedAccount(fromUrl, prefix)
  const before = await allRecords(account.agent, account.did)
  assert.equal(Object.keys(before).length, 4)
  const moved = await migrate(account, toUrl)
  await checkArrived(moved, before, toUrl)
}

test('from the reference PDS to ours: every record reads back with the same CID', step, () =>
  moveAndCheck(env.referencePdsUrl, env.pdsUrl, 'mvref'))

test('from our PDS to the reference: every record reads back with the same CID', step, () =>
  moveAndCheck(env.pdsUrl, env.referencePdsUrl, 'mvours'))
