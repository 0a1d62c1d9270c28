// deactivateAccount / checkAccountStatus / activateAccount.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createAccount, didDocument, env, newAgent, step } from '../lib/harness.mjs'

let erin

test('checkAccountStatus of a new account: active, with its repository', step, async () => {
  erin = await createAccount('erin')
  const res = await erin.agent.com.atproto.server.checkAccountStatus()
  assert.equal(res.data.activated, true)
  assert.equal(res.data.validDid, true)
  assert.match(res.data.repoCommit, /^bafyrei[a-z2-7]+$/)
  assert.match(res.data.repoRev, /^[2-7a-z]{13}$/)
  assert.equal(typeof res.data.repoBlocks, 'number')
  assert.equal(typeof res.data.indexedRecords, 'number')
  assert.equal(typeof res.data.expectedBlobs, 'number')
  assert.equal(typeof res.data.importedBlobs, 'number')
})

test('deactivateAccount: status deactivated, login says so', step, async () => {
  assert.ok(erin, 'needs the account of the previous test')
  await erin.agent.com.atproto.server.deactivateAccount({})
  const res = await erin.agent.com.atproto.server.checkAccountStatus()
  assert.equal(res.data.activated, false)
  const login = await newAgent().login({ identifier: erin.handle, password: erin.password })
  assert.equal(login.data.did, erin.did)
  assert.equal(login.data.active, false)
  assert.equal(login.data.status, 'deactivated')
  const me = await erin.agent.com.atproto.server.getSession()
  assert.equal(me.data.active, false)
  assert.equal(me.data.status, 'deactivated')
  // the identity stays at the directory
  const doc = await didDocument(erin.did)
  assert.equal(doc.service?.[0]?.serviceEndpoint, env.pdsUrl)
})

test('activateAccount: active again', step, async () => {
  assert.ok(erin, 'needs the account of the first test')
  await erin.agent.com.atproto.server.activateAccount()
  const res = await erin.agent.com.atproto.server.checkAccountStatus()
  assert.equal(res.data.activated, true)
  const login = await newAgent().login({ identifier: erin.handle, password: erin.password })
  assert.notEqual(login.data.active, false)
  assert.equal(login.data.status, undefined)
})
