// Restart: stop the PDS (SIGTERM) and start it again on the same data
// directory; accounts, sessions and handles are still there.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  createAccount,
  didDocument,
  getSessionWith,
  newAgent,
  newIdentity,
  refreshWith,
  restartPds,
  step,
} from '../lib/harness.mjs'

let hank
let ivy
let login

test('before the restart: two accounts, a session, a changed handle', step, async () => {
  hank = await createAccount('hank')
  ivy = await createAccount('ivy')
  const newHandle = newIdentity('ivy2').handle
  await ivy.agent.com.atproto.identity.updateHandle({ handle: newHandle })
  ivy.handle = newHandle
  login = await newAgent().login({ identifier: hank.handle, password: hank.password })
})

test('SIGTERM stops the PDS cleanly; it starts again on the same data', step, async () => {
  assert.ok(login, 'needs the accounts of the previous test')
  const exit = await restartPds()
  assert.equal(exit?.code, 0, `the PDS exited with ${JSON.stringify(exit)} on SIGTERM`)
})

test('after the restart: sessions refresh, logins work, handles resolve', step, async () => {
  assert.ok(login, 'needs the accounts of the first test')
  const refreshed = await refreshWith(login.data.refreshJwt)
  assert.equal(refreshed.data.did, hank.did)
  assert.equal(refreshed.data.handle, hank.handle)
  // an access token issued before the restart is still good
  const me = await getSessionWith(login.data.accessJwt)
  assert.equal(me.data.did, hank.did)
  for (const who of [hank, ivy]) {
    const res = await newAgent().login({ identifier: who.handle, password: who.password })
    assert.equal(res.data.did, who.did)
    const byEmail = await newAgent().login({ identifier: who.email, password: who.password })
    assert.equal(byEmail.data.did, who.did)
    const resolved = await newAgent().com.atproto.identity.resolveHandle({ handle: who.handle })
    assert.equal(resolved.data.did, who.did)
    const doc = await didDocument(who.did)
    assert.deepEqual(doc.alsoKnownAs, [`at://${who.handle}`])
  }
  // the agent created before the restart keeps working
  const status = await ivy.agent.com.atproto.server.getSession()
  assert.equal(status.data.handle, ivy.handle)
})

test('after the restart: new accounts can be created', step, async () => {
  const jo = await createAccount('jo')
  const res = await newAgent().com.atproto.identity.resolveHandle({ handle: jo.handle })
  assert.equal(res.data.did, jo.did)
})
