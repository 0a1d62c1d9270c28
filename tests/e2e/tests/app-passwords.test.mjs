// App passwords: create, log in with one, list, revoke; a revoked app
// password's sessions and the password itself are refused afterwards.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createAccount,
  getSessionWith,
  loginRefused,
  newAgent,
  refreshWith,
  refused,
  step,
} from '../lib/harness.mjs'

let owner // the account (full session)
let appPassword // { name, password }
let appSession // session data of a login with the app password

test('createAppPassword answers a new password once', step, async () => {
  owner = await createAccount('apps')
  const name = 'e2e client'
  const res = await owner.agent.com.atproto.server.createAppPassword({ name })
  assert.equal(res.data.name, name)
  assert.match(res.data.password, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/)
  assert.ok(!Number.isNaN(Date.parse(res.data.createdAt)), `createdAt ${res.data.createdAt}`)
  appPassword = { name, password: res.data.password }
})

test('login with the app password', step, async () => {
  assert.ok(appPassword, 'needs the app password of the previous test')
  const agent = newAgent()
  const res = await agent.login({ identifier: owner.handle, password: appPassword.password })
  assert.equal(res.data.did, owner.did)
  assert.equal(res.data.handle, owner.handle)
  appSession = res.data
  const me = await getSessionWith(res.data.accessJwt)
  assert.equal(me.data.did, owner.did)
  // an app-password session may not manage app passwords
  await refused(agent.com.atproto.server.createAppPassword({ name: 'from an app' }), {
    error: 'InvalidToken',
    status: 400,
    message: /Bad token scope/,
  })
  // its refresh token works while the app password exists
  const refreshed = await refreshWith(res.data.refreshJwt)
  assert.equal(refreshed.data.did, owner.did)
  appSession = refreshed.data
})

test('listAppPasswords shows the name, never the password', step, async () => {
  assert.ok(appPassword, 'needs the app password of the first test')
  const res = await owner.agent.com.atproto.server.listAppPasswords()
  const names = res.data.passwords.map((p) => p.name)
  assert.deepEqual(names, [appPassword.name])
  const [entry] = res.data.passwords
  assert.equal(entry.password, undefined)
  assert.ok(!Number.isNaN(Date.parse(entry.createdAt)))
})

test('revokeAppPassword: the password and its sessions are refused', step, async () => {
  assert.ok(appSession, 'needs the app-password session of the login test')
  await owner.agent.com.atproto.server.revokeAppPassword({ name: appPassword.name })
  const list = await owner.agent.com.atproto.server.listAppPasswords()
  assert.deepEqual(list.data.passwords, [])
  await refused(refreshWith(appSession.refreshJwt), {
    error: 'ExpiredToken',
    status: 400,
    message: /Token has been revoked/,
  })
  await loginRefused(owner.handle, appPassword.password)
  // the account's own password and session are untouched
  const me = await owner.agent.com.atproto.server.getSession()
  assert.equal(me.data.did, owner.did)
  const again = await newAgent().login({ identifier: owner.handle, password: owner.password })
  assert.equal(again.data.did, owner.did)
})
