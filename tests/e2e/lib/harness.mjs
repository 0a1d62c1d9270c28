// What the test files share: where the servers are (from the E2E_*
// variables run.mjs sets), official-client agents whose every request has a
// time limit, checks for XRPC refusals, the delivered mail, the PLC
// directory, and a PDS restart through run.mjs's control server.

import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'

import { AtpAgent } from '@atproto/api'
import { Secp256k1Keypair } from '@atproto/crypto'
import { IdResolver } from '@atproto/identity'

import { findToken, listMessages } from './mail.mjs'

function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run the suite through tests/e2e/run.mjs`)
  return value
}

/** Where the servers of this run are. */
export const env = {
  target: process.env.E2E_TARGET || 'ours',
  pdsUrl: required('E2E_PDS_URL'),
  plcUrl: required('E2E_PLC_URL'),
  mailDir: required('E2E_MAIL_DIR'),
  controlUrl: required('E2E_CONTROL_URL'),
  jwtSecret: required('E2E_JWT_SECRET'),
  serviceDid: process.env.E2E_SERVICE_DID || 'did:web:localhost',
  adminPassword: required('E2E_ADMIN_PASSWORD'),
  rotationKeyHex: required('E2E_PLC_ROTATION_KEY_HEX'),
  appViewUrl: required('E2E_APPVIEW_URL'),
  appViewDid: required('E2E_APPVIEW_DID'),
  relayUrl: required('E2E_RELAY_URL'),
  blobUploadLimit: Number(required('E2E_BLOB_UPLOAD_LIMIT')),
  // the reference PDS beside ours (E2E_TARGET=both, the migration suite)
  referencePdsUrl: process.env.E2E_REFERENCE_PDS_URL || null,
  referenceServiceDid: process.env.E2E_REFERENCE_SERVICE_DID || null,
}

/** The did:key of the PLC rotation key the PDS was configured with. */
export async function serverRotationDidKey() {
  const keypair = await Secp256k1Keypair.import(env.rotationKeyHex)
  return keypair.did()
}

/** Time limit of one HTTP request. */
export const REQUEST_MS = Number(process.env.E2E_REQUEST_SECONDS || 15) * 1000
/** Time limit of one test step (give to `test(name, { timeout: STEP_MS })`). */
export const STEP_MS = Number(process.env.E2E_STEP_SECONDS || 60) * 1000
/** Options for every `test()`: a step that hangs fails with a message. */
export const step = { timeout: STEP_MS }

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * fetch with a time limit: a request that gets no answer in REQUEST_MS
 * fails with the method and URL instead of hanging the suite.
 */
export async function timedFetch(input, init = {}) {
  const url = typeof input === 'string' ? input : input.url
  const method = init.method || (typeof input === 'object' && input.method) || 'GET'
  const timeout = AbortSignal.timeout(REQUEST_MS)
  const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout
  try {
    return await fetch(input, { ...init, signal })
  } catch (err) {
    if (timeout.aborted) {
      throw new Error(`${method} ${url}: no answer within ${REQUEST_MS / 1000} s`)
    }
    throw err
  }
}

/** A new official-client agent (AtpAgent) on the PDS under test. */
export function newAgent(service = env.pdsUrl) {
  return new AtpAgent({ service, fetch: timedFetch })
}

/** A short random lower-case suffix for names that must be unique. */
export function unique(length = 6) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  const bytes = randomBytes(length)
  let s = ''
  for (const b of bytes) s += alphabet[b % alphabet.length]
  return s
}

/** Fresh account details: handle under `.test`, email, password. */
export function newIdentity(prefix = 'user') {
  const name = `${prefix}${unique()}`
  return {
    handle: `${name}.test`,
    email: `${name}@example.com`,
    password: `pw-${unique(12)}`,
  }
}

/**
 * Creates an account through AtpAgent.createAccount and checks the answer.
 * Returns the identity, its DID and the agent (holding the session).
 */
export async function createAccount(prefix = 'user') {
  const id = newIdentity(prefix)
  const agent = newAgent()
  const res = await agent.createAccount({ ...id })
  assert.equal(res.success, true)
  assert.match(res.data.did, /^did:plc:[a-z2-7]{24}$/)
  assert.equal(res.data.handle, id.handle)
  assert.equal(typeof res.data.accessJwt, 'string')
  assert.equal(typeof res.data.refreshJwt, 'string')
  assert.equal(agent.session?.did, res.data.did)
  return { ...id, did: res.data.did, agent, session: res.data }
}

/**
 * Expects `promise` to be refused with an XRPC error: `error` (the error
 * name), `status` (HTTP status), `message` (optional regular expression).
 * Returns the error.
 */
export async function refused(promise, { error, status, message }) {
  let outcome
  try {
    outcome = await promise
  } catch (err) {
    const seen = `status ${err?.status}, error ${JSON.stringify(err?.error)}, message ${JSON.stringify(err?.message)}`
    if (error !== undefined) assert.equal(err?.error, error, `expected error ${error}; got ${seen}`)
    if (status !== undefined) assert.equal(err?.status, status, `expected HTTP ${status}; got ${seen}`)
    if (message !== undefined) assert.match(String(err?.message), message, `unexpected message; got ${seen}`)
    return err
  }
  assert.fail(`expected a refusal (${error}, HTTP ${status}) but the call succeeded: ${JSON.stringify(outcome?.data ?? outcome)}`)
}

/** Asserts that a login with `identifier` and `password` is refused: HTTP
 * 401 AuthenticationRequired (with `message`, a RegExp, when given). */
export async function loginRefused(identifier, password, message) {
  return refused(newAgent().login({ identifier, password }), { error: 'AuthenticationRequired', status: 401, message })
}

/** Calls refreshSession with an explicit refresh token (no stored session). */
export function refreshWith(refreshJwt) {
  return newAgent().com.atproto.server.refreshSession(undefined, {
    headers: { authorization: `Bearer ${refreshJwt}` },
  })
}

/** Calls getSession with an explicit access token. */
export function getSessionWith(accessJwt) {
  return newAgent().com.atproto.server.getSession(undefined, {
    headers: { authorization: `Bearer ${accessJwt}` },
  })
}

/** Calls deleteSession with an explicit refresh token. */
export function deleteSessionWith(refreshJwt) {
  return newAgent().com.atproto.server.deleteSession(undefined, {
    headers: { authorization: `Bearer ${refreshJwt}` },
  })
}

// Mail: each test process remembers the messages it already consumed.
const consumed = new Set()

/**
 * Waits (up to REQUEST_MS) for a new message to `to` whose subject matches
 * `subject`, and marks it consumed. Fails with the subjects seen.
 */
export async function waitForMail(to, subject) {
  const deadline = Date.now() + REQUEST_MS
  const address = to.toLowerCase()
  let seen = []
  while (Date.now() < deadline) {
    seen = listMessages(env.mailDir).filter((m) => m.recipients.includes(address))
    const found = seen.find((m) => !consumed.has(m.file) && subject.test(m.subject))
    if (found) {
      consumed.add(found.file)
      return found
    }
    await sleep(100)
  }
  assert.fail(
    `no mail to ${to} with a subject matching ${subject} within ${REQUEST_MS / 1000} s; ` +
      `messages to that address: ${JSON.stringify(seen.map((m) => m.subject))}`,
  )
}

/** Waits for a mail (see waitForMail) and returns the one-time code in it. */
export async function mailedToken(to, subject) {
  const mail = await waitForMail(to, subject)
  const token = findToken(mail.text)
  assert.ok(token, `no XXXXX-XXXXX code in the mail "${mail.subject}":\n${mail.text.slice(0, 2000)}`)
  return { token, mail }
}

/**
 * The DID resolver of the official client, on this run's PLC directory (its
 * default fetch refuses loopback addresses, so it gets ours).
 */
export const idResolver = new IdResolver({
  plcUrl: env.plcUrl,
  timeout: REQUEST_MS,
  fetch: timedFetch,
})

/** The DID document the directory holds now (no cache). */
export async function didDocument(did) {
  const doc = await idResolver.did.resolve(did, true)
  assert.ok(doc, `the directory has no document for ${did}`)
  return doc
}

/** The directory's `/data` view of a DID (rotation keys, handles, services). */
export async function plcData(did) {
  const res = await timedFetch(`${env.plcUrl}/${did}/data`)
  assert.equal(res.status, 200, `GET ${env.plcUrl}/${did}/data: HTTP ${res.status}`)
  return res.json()
}

/** The PDS's log tail (from run.mjs), for failure messages. */
export async function pdsLog() {
  try {
    const res = await timedFetch(`${env.controlUrl}/log`)
    return await res.text()
  } catch (err) {
    return `(log unavailable: ${err?.message || err})`
  }
}

/**
 * Stops the PDS (SIGTERM) and starts it again on the same data directory
 * and port. Returns how the old process exited ({code, signal}).
 */
export async function restartPds() {
  const res = await fetch(`${env.controlUrl}/restart`, {
    method: 'POST',
    signal: AbortSignal.timeout(STEP_MS),
  })
  const body = await res.json()
  assert.equal(res.status, 200, `restart failed: ${body.message}`)
  return body.exit
}

/** An HS256 JWT signed with the PDS's JWT secret (for expired-token checks). */
export function signJwt(header, payload, secret = env.jwtSecret) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url')
  const input = `${b64({ alg: 'HS256', ...header })}.${b64(payload)}`
  const sig = createHmac('sha256', secret).update(input).digest('base64url')
  return `${input}.${sig}`
}

/** The claims of a JWT (not verified). */
export function jwtClaims(jwt) {
  const [, payload] = jwt.split('.')
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
}

/** The header of a JWT (not verified). */
export function jwtHeader(jwt) {
  const [header] = jwt.split('.')
  return JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))
}
