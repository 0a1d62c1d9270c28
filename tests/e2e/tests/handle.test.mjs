// updateHandle: the directory document and resolveHandle follow the change.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createAccount,
  didDocument,
  idResolver,
  loginRefused,
  newAgent,
  newIdentity,
  plcData,
  refused,
  step,
} from '../lib/harness.mjs'

let bob
let newHandle

test('updateHandle changes the handle at the PDS and the directory', step, async () => {
  bob = await createAccount('bob')
  newHandle = newIdentity('bobby').handle
  await bob.agent.com.atproto.identity.updateHandle({ handle: newHandle })
  const me = await bob.agent.com.atproto.server.getSession()
  assert.equal(me.data.handle, newHandle)

  const doc = await didDocument(bob.did)
  assert.deepEqual(doc.alsoKnownAs, [`at://${newHandle}`])
  const data = await idResolver.did.resolveAtprotoData(bob.did, true)
  assert.equal(data.handle, newHandle)
  const op = await plcData(bob.did)
  assert.deepEqual(op.alsoKnownAs, [`at://${newHandle}`])
})

test('resolveHandle follows: the new handle resolves, the old one no more', step, async () => {
  assert.ok(newHandle, 'needs the handle change of the previous test')
  const res = await newAgent().com.atproto.identity.resolveHandle({ handle: newHandle })
  assert.equal(res.data.did, bob.did)
  await refused(newAgent().com.atproto.identity.resolveHandle({ handle: bob.handle }), {
    error: 'HandleNotFound',
    status: 400,
    message: /Unable to resolve handle/,
  })
})

test('login follows the handle change', step, async () => {
  assert.ok(newHandle, 'needs the handle change of the first test')
  const res = await newAgent().login({ identifier: newHandle, password: bob.password })
  assert.equal(res.data.did, bob.did)
  assert.equal(res.data.handle, newHandle)
  await loginRefused(bob.handle, bob.password)
})

test('updateHandle refuses a taken handle and an invalid one', step, async () => {
  assert.ok(newHandle, 'needs the handle change of the first test')
  const carol = await createAccount('carol')
  await refused(carol.agent.com.atproto.identity.updateHandle({ handle: newHandle }), {
    error: 'HandleNotAvailable',
    status: 400,
    message: /Handle already taken/,
  })
  await refused(carol.agent.com.atproto.identity.updateHandle({ handle: 'ab.test' }), {
    error: 'InvalidHandle',
    status: 400,
  })
  // nothing changed for either
  const doc = await didDocument(carol.did)
  assert.deepEqual(doc.alsoKnownAs, [`at://${carol.handle}`])
  const res = await newAgent().com.atproto.identity.resolveHandle({ handle: newHandle })
  assert.equal(res.data.did, bob.did)
})

test('updateHandle without a session is refused', step, async () => {
  await refused(newAgent().com.atproto.identity.updateHandle({ handle: newIdentity('anon').handle }), {
    error: 'AuthMissing',
    status: 401,
  })
})
