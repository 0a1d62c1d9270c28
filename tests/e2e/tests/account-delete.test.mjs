// requestAccountDelete mails a code; deleteAccount with it removes the
// account: logins, handle resolution and old sessions are refused.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createAccount,
  getSessionWith,
  loginRefused,
  mailedToken,
  newAgent,
  refreshWith,
  refused,
  step,
} from '../lib/harness.mjs'

let frank

test('requestAccountDelete delivers a code by mail', step, async () => {
  frank = await createAccount('frank')
  await frank.agent.com.atproto.server.requestAccountDelete()
  const { token } = await mailedToken(frank.email, /Account Deletion/i)
  frank.deleteToken = token
})

test('deleteAccount refuses a wrong code or password', step, async () => {
  assert.ok(frank?.deleteToken, 'needs the mailed code of the previous test')
  const server = newAgent().com.atproto.server
  await refused(
    server.deleteAccount({ did: frank.did, password: frank.password, token: 'AAAAA-BBBBB' }),
    { error: 'InvalidToken', status: 400, message: /Token is invalid/ },
  )
  await refused(
    server.deleteAccount({ did: frank.did, password: 'wrong-password', token: frank.deleteToken }),
    { error: 'AuthenticationRequired', status: 401, message: /Invalid did or password/ },
  )
  // still there
  const res = await newAgent().com.atproto.identity.resolveHandle({ handle: frank.handle })
  assert.equal(res.data.did, frank.did)
})

test('deleteAccount with the mailed code; then the account is gone', step, async () => {
  assert.ok(frank?.deleteToken, 'needs the mailed code of the first test')
  await newAgent().com.atproto.server.deleteAccount({
    did: frank.did,
    password: frank.password,
    token: frank.deleteToken,
  })
  await loginRefused(frank.handle, frank.password, /Invalid identifier or password/)
  await loginRefused(frank.email, frank.password)
  await refused(newAgent().com.atproto.identity.resolveHandle({ handle: frank.handle }), {
    error: 'HandleNotFound',
    status: 400,
  })
  // the session from before the deletion is dead
  await refused(refreshWith(frank.session.refreshJwt), { status: 400 })
  await refused(getSessionWith(frank.session.accessJwt), { status: 400 })
})
