// Stand-in peers of the PDS under test, on loopback, started by run.mjs:
//
// - an AppView: serves its did:web document, and answers
//   app.bsky.actor.getProfile only when the request carries a service-auth
//   JWT that verifies (verifyJwt from @atproto/xrpc-server, the issuer's
//   key resolved at the run's PLC directory) for its own DID and that
//   method;
// - a relay: records every com.atproto.sync.requestCrawl it receives.
//
// Both remember what they saw; `GET /_seen` answers it as JSON, so the
// test files (other processes) can check.

import { createServer } from 'node:http'

import { IdResolver } from '@atproto/identity'
import { verifyJwt } from '@atproto/xrpc-server'

/** Reads a request body as text (small bodies only). */
function readBody(req) {
  return new Promise((resolve, reject) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => {
      text += chunk
      if (text.length > 100_000) reject(new Error('body too large'))
    })
    req.on('end', () => resolve(text))
    req.on('error', reject)
  })
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server.address().port
}

/** The display name the stand-in AppView puts in every profile it serves. */
export const APPVIEW_DISPLAY_NAME = 'Served by the stand-in AppView'

/**
 * Starts the stand-in AppView. Its DID is `did:web:localhost%3A<port>`
 * (served at /.well-known/did.json); its URL `http://localhost:<port>`.
 */
export async function startAppView({ plcUrl }) {
  // the default fetch refuses plain http and loopback addresses
  const idResolver = new IdResolver({ plcUrl, timeout: 10_000, fetch: (input, init) => fetch(input, init) })
  const seen = []
  let did = null
  let url = null
  const server = createServer(async (req, res) => {
    try {
      const { pathname, searchParams } = new URL(req.url, 'http://localhost')
      if (req.method === 'GET' && pathname === '/_seen') return answer(res, 200, { seen })
      if (req.method === 'GET' && pathname === '/.well-known/did.json') {
        return answer(res, 200, {
          '@context': ['https://www.w3.org/ns/did/v1'],
          id: did,
          service: [{ id: '#bsky_appview', type: 'BskyAppView', serviceEndpoint: url }],
        })
      }
      if (!pathname.startsWith('/xrpc/')) return answer(res, 404, { error: 'NotFound', message: 'not here' })
      const nsid = pathname.slice('/xrpc/'.length)
      const auth = req.headers.authorization || ''
      const record = { nsid, params: Object.fromEntries(searchParams), verified: false }
      seen.push(record)
      if (!auth.startsWith('Bearer ')) {
        record.refusal = 'no bearer token'
        return answer(res, 401, { error: 'AuthMissing', message: 'no service token' })
      }
      let payload
      try {
        // the audience may name the service entry (did#bsky_appview)
        payload = await verifyJwt(auth.slice('Bearer '.length), null, nsid, async (iss, forceRefresh) => {
          const issuer = iss.split('#')[0]
          const data = await idResolver.did.resolveAtprotoData(issuer, forceRefresh)
          return data.signingKey
        })
      } catch (err) {
        record.refusal = String(err?.message || err)
        return answer(res, 401, { error: 'BadJwt', message: record.refusal })
      }
      if (payload.aud !== did && payload.aud !== `${did}#bsky_appview`) {
        record.refusal = `audience ${payload.aud}`
        return answer(res, 401, { error: 'BadJwtAudience', message: record.refusal })
      }
      record.verified = true
      record.iss = payload.iss
      record.aud = payload.aud
      record.lxm = payload.lxm
      if (nsid === 'app.bsky.actor.getProfile') {
        const actor = searchParams.get('actor') || ''
        const subject = actor.startsWith('did:') ? actor : await idResolver.handle.resolve(actor)
        return answer(res, 200, {
          did: subject || payload.iss,
          handle: actor.startsWith('did:') ? 'handle.invalid' : actor,
          displayName: APPVIEW_DISPLAY_NAME,
          description: `asked by ${payload.iss}`,
          followersCount: 7,
          followsCount: 3,
          postsCount: 1,
        })
      }
      return answer(res, 501, { error: 'MethodNotImplemented', message: `${nsid} is not served here` })
    } catch (err) {
      answer(res, 500, { error: 'InternalServerError', message: String(err?.message || err) })
    }
  })
  const port = await listen(server)
  did = `did:web:localhost%3A${port}`
  url = `http://localhost:${port}`
  return { did, url, stop: () => new Promise((resolve) => server.close(resolve)) }
}

/** Starts the stand-in relay: it accepts and records requestCrawl calls. */
export async function startRelay() {
  const seen = []
  const server = createServer(async (req, res) => {
    try {
      const { pathname } = new URL(req.url, 'http://localhost')
      if (req.method === 'GET' && pathname === '/_seen') return answer(res, 200, { seen })
      if (pathname === '/xrpc/com.atproto.sync.requestCrawl') {
        const text = await readBody(req)
        let body = null
        try {
          body = JSON.parse(text)
        } catch {
          body = { unparsed: text }
        }
        seen.push({ method: req.method, contentType: req.headers['content-type'] || null, body })
        res.writeHead(200)
        return res.end()
      }
      answer(res, 404, { error: 'NotFound', message: 'not here' })
    } catch (err) {
      answer(res, 500, { error: 'InternalServerError', message: String(err?.message || err) })
    }
  })
  const port = await listen(server)
  return { url: `http://localhost:${port}`, stop: () => new Promise((resolve) => server.close(resolve)) }
}
