// Revoked and expired tokens are refused: a deleted session's refresh
// token, tokens past their expiry, tokens with a bad signature.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createAccount,
  deleteSessionWith,
  getSessionWith,
  jwtClaims,
  jwtHeader,
  newAgent,
  refreshWith,
  refused,
  signJwt,
  step,
} from '../lib/harness.mjs'

let gina

test('deleteSession revokes the refresh token', step, async () => {
  gina = await createAccount('gina')
  const agent = newAgent()
  const login = await agent.login({ identifier: gina.handle, password: gina.password })
  await deleteSessionWith(login.data.refreshJwt)
  await refused(refreshWith(login.data.refreshJwt), {
    error: 'ExpiredToken',
    status: 400,
    message: /Token has been revoked/,
  })
  // other sessions of the account live on
  const other = await refreshWith(gina.session.refreshJwt)
  assert.equal(other.data.did, gina.did)
  gina.session = other.data
})

test('an expired access token is refused with ExpiredToken', step, async () => {
  assert.ok(gina, 'needs the account of the first test')
  const { accessJwt } = gina.session
  const now = Math.floor(Date.now() / 1000)
  const expired = signJwt(jwtHeader(accessJwt), { ...jwtClaims(accessJwt), iat: now - 7200, exp: now - 3600 })
  await refused(getSessionWith(expired), { error: 'ExpiredToken', status: 400, message: /Token has expired/ })
  // the same claims, not expired, with the server's secret: accepted
  const fresh = signJwt(jwtHeader(accessJwt), { ...jwtClaims(accessJwt), iat: now, exp: now + 600 })
  const me = await getSessionWith(fresh)
  assert.equal(me.data.did, gina.did)
})

test('an expired refresh token is refused with ExpiredToken', step, async () => {
  assert.ok(gina, 'needs the account of the first test')
  const { refreshJwt } = gina.session
  const now = Math.floor(Date.now() / 1000)
  const expired = signJwt(jwtHeader(refreshJwt), { ...jwtClaims(refreshJwt), iat: now - 7200, exp: now - 3600 })
  await refused(refreshWith(expired), { error: 'ExpiredToken', status: 400, message: /Token has expired/ })
})

test('a token with a bad signature is refused with InvalidToken', step, async () => {
  assert.ok(gina, 'needs the account of the first test')
  const { accessJwt } = gina.session
  const forged = signJwt(jwtHeader(accessJwt), jwtClaims(accessJwt), 'not-the-server-secret')
  await refused(getSessionWith(forged), { error: 'InvalidToken', status: 400 })
  await refused(getSessionWith('not.a.jwt'), { error: 'InvalidToken', status: 400 })
  // a refresh token is not an access token, nor the reverse
  await refused(getSessionWith(gina.session.refreshJwt), { error: 'InvalidToken', status: 400 })
  await refused(refreshWith(gina.session.accessJwt), { error: 'InvalidToken', status: 400 })
})
