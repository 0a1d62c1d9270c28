// requestPasswordReset mails a code; resetPassword with it changes the
// password: the new one logs in, the old one is refused.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { createAccount, loginRefused, mailedToken, newAgent, refused, step, unique } from '../lib/harness.mjs'

let dave
let newPassword

test('requestPasswordReset delivers a code by mail', step, async () => {
  dave = await createAccount('dave')
  await newAgent().com.atproto.server.requestPasswordReset({ email: dave.email })
  const { token, mail } = await mailedToken(dave.email, /Password Reset/i)
  assert.match(mail.from, /noreply@pds\.test/)
  dave.resetToken = token
})

test('resetPassword refuses a wrong code', step, async () => {
  assert.ok(dave?.resetToken, 'needs the mailed code of the previous test')
  await refused(
    newAgent().com.atproto.server.resetPassword({ token: 'AAAAA-BBBBB', password: 'whatever-1' }),
    { error: 'InvalidToken', status: 400, message: /Token is invalid/ },
  )
})

test('resetPassword with the mailed code; new password in, old one out', step, async () => {
  assert.ok(dave?.resetToken, 'needs the mailed code of the first test')
  newPassword = `new-${unique(12)}`
  await newAgent().com.atproto.server.resetPassword({ token: dave.resetToken, password: newPassword })
  const res = await newAgent().login({ identifier: dave.handle, password: newPassword })
  assert.equal(res.data.did, dave.did)
  await loginRefused(dave.handle, dave.password, /Invalid identifier or password/)
  // the code was used up
  await refused(
    newAgent().com.atproto.server.resetPassword({ token: dave.resetToken, password: 'again-123' }),
    { error: 'InvalidToken', status: 400 },
  )
})
