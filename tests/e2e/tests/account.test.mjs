// Account creation, the DID document at the directory, logins, session
// refresh and the refusals around them.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createAccount,
  didDocument,
  env,
  getSessionWith,
  idResolver,
  jwtClaims,
  loginRefused,
  newAgent,
  newIdentity,
  plcData,
  refreshWith,
  refused,
  serverRotationDidKey,
  step,
} from '../lib/harness.mjs'

let alice // set by the first test; later tests need it

function needAlice() {
  assert.ok(alice, 'needs the account of the createAccount test, which failed')
  return alice
}

test('describeServer offers the .test handle domain and needs no invite', step, async () => {
  const res = await newAgent().com.atproto.server.describeServer()
  assert.deepEqual(res.data.availableUserDomains, ['.test'])
  assert.equal(res.data.inviteCodeRequired, false)
  assert.equal(res.data.did, env.serviceDid)
})

test('createAccount with AtpAgent opens a session', step, async () => {
  alice = await createAccount('alice')
  const { agent, handle, email, did } = alice
  assert.equal(agent.session.handle, handle)
  assert.equal(agent.session.email, email)
  const me = await agent.com.atproto.server.getSession()
  assert.equal(me.data.did, did)
  assert.equal(me.data.handle, handle)
  assert.equal(me.data.email, email)
  assert.equal(me.data.emailConfirmed, false)
  assert.notEqual(me.data.active, false)
})

test('the directory holds the new DID: handle, PDS endpoint, signing key', step, async () => {
  const { did, handle, agent } = needAlice()
  const doc = await didDocument(did)
  assert.equal(doc.id, did)
  assert.deepEqual(doc.alsoKnownAs, [`at://${handle}`])
  const data = await idResolver.did.resolveAtprotoData(did, true)
  assert.equal(data.did, did)
  assert.equal(data.handle, handle)
  assert.equal(data.pds, env.pdsUrl)
  assert.match(data.signingKey, /^did:key:z/)

  // what the PDS recommends is what it wrote to the directory
  const rec = await agent.com.atproto.identity.getRecommendedDidCredentials()
  assert.deepEqual(rec.data.alsoKnownAs, [`at://${handle}`])
  assert.equal(rec.data.verificationMethods.atproto, data.signingKey)
  assert.deepEqual(rec.data.services.atproto_pds, {
    type: 'AtprotoPersonalDataServer',
    endpoint: env.pdsUrl,
  })
  const op = await plcData(did)
  assert.deepEqual(op.rotationKeys, rec.data.rotationKeys)
  assert.deepEqual(op.verificationMethods, rec.data.verificationMethods)
  assert.deepEqual(op.alsoKnownAs, rec.data.alsoKnownAs)
  assert.deepEqual(op.services, rec.data.services)
  // the server's configured PLC rotation key controls the DID
  assert.ok(
    op.rotationKeys.includes(await serverRotationDidKey()),
    `rotation keys ${JSON.stringify(op.rotationKeys)} lack the server's key`,
  )
})

test('resolveHandle at the PDS answers the new DID', step, async () => {
  const { did, handle } = needAlice()
  const res = await newAgent().com.atproto.identity.resolveHandle({ handle })
  assert.equal(res.data.did, did)
})

test('login by handle', step, async () => {
  const { did, handle, email, password } = needAlice()
  const agent = newAgent()
  const res = await agent.login({ identifier: handle, password })
  assert.equal(res.data.did, did)
  assert.equal(res.data.handle, handle)
  assert.equal(res.data.email, email)
  assert.notEqual(res.data.active, false)
  const me = await agent.com.atproto.server.getSession()
  assert.equal(me.data.did, did)
})

test('login by email', step, async () => {
  const { did, handle, email, password } = needAlice()
  const agent = newAgent()
  const res = await agent.login({ identifier: email, password })
  assert.equal(res.data.did, did)
  assert.equal(res.data.handle, handle)
})

test('refreshSession rotates the tokens; the new access token works', step, async () => {
  const { did, handle, email, password } = needAlice()
  const agent = newAgent()
  await agent.login({ identifier: handle, password })
  const before = { ...agent.session }
  const res = await agent.sessionManager.refreshSession()
  assert.equal(res.data.did, did)
  assert.equal(res.data.handle, handle)
  // a new refresh token (an access token made within the same second may
  // equal the old one: same claims)
  assert.notEqual(res.data.refreshJwt, before.refreshJwt)
  assert.equal(jwtClaims(res.data.accessJwt).sub, did)
  assert.equal(jwtClaims(res.data.accessJwt).scope, 'com.atproto.access')
  assert.equal(jwtClaims(res.data.refreshJwt).scope, 'com.atproto.refresh')
  assert.equal(agent.session.refreshJwt, res.data.refreshJwt)
  const me = await getSessionWith(res.data.accessJwt)
  assert.equal(me.data.did, did)
  assert.equal(me.data.email, email)
  // and the new refresh token refreshes again
  const again = await refreshWith(res.data.refreshJwt)
  assert.equal(again.data.did, did)
})

test('a wrong password is refused with AuthenticationRequired', step, async () => {
  const { handle, email } = needAlice()
  await loginRefused(handle, 'not-the-password', /Invalid identifier or password/)
  await loginRefused(email, 'not-the-password')
  await loginRefused('nobody-here.test', 'x')
})

test('a taken handle is refused', step, async () => {
  const { handle } = needAlice()
  const other = newIdentity('taken')
  await refused(newAgent().createAccount({ ...other, handle }), {
    error: 'InvalidRequest',
    status: 400,
    message: /Handle already taken/,
  })
})

test('a taken email is refused', step, async () => {
  const { email } = needAlice()
  const other = newIdentity('mail')
  await refused(newAgent().createAccount({ ...other, email }), {
    error: 'InvalidRequest',
    status: 400,
    message: /Email already taken/,
  })
})

test('invalid handles are refused', step, async () => {
  const id = newIdentity('bad')
  // too short a name under the service domain
  await refused(newAgent().createAccount({ ...id, handle: 'ab.test' }), {
    error: 'InvalidHandle',
    status: 400,
    message: /Handle too short/,
  })
  // too long a name under the service domain
  await refused(newAgent().createAccount({ ...id, handle: 'abcdefghijklmnopqrstuvwxyz.test' }), {
    error: 'InvalidHandle',
    status: 400,
    message: /Handle too long/,
  })
  // a sub-domain of the service domain
  await refused(newAgent().createAccount({ ...id, handle: 'one.two.test' }), {
    error: 'InvalidHandle',
    status: 400,
  })
  // a domain this server does not serve
  await refused(newAgent().createAccount({ ...id, handle: 'someone.example.com' }), {
    error: 'UnsupportedDomain',
    status: 400,
  })
  // none of these attempts created an account
  await refused(newAgent().com.atproto.identity.resolveHandle({ handle: 'ab.test' }), {
    status: 400,
  })
})
