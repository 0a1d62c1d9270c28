// Sends the same requests to a Rust XRPC server and to the reference XRPC
// server (@atproto/xrpc-server, with the same lexicons and stub handlers
// answering {}), and reports both answers for the Rust side to compare.
// Input: {"url": "http://127.0.0.1:PORT", "lexicons": [docs], "methods":
// [nsid], "requests": [{"method", "path", "contentType"?, "body"?}]}.
import { once } from 'node:events'
import { createServer } from '@atproto/xrpc-server'
import { readInput, writeOutput } from './lib/io.mjs'

const input = await readInput()
const server = createServer(input.lexicons, { validateResponse: false })
for (const nsid of input.methods) {
  server.method(nsid, async () => ({ encoding: 'application/json', body: {} }))
}
const listener = server.listen(0)
await once(listener, 'listening')
const referenceUrl = `http://127.0.0.1:${listener.address().port}`

async function send(base, request) {
  const headers = {}
  if (request.contentType) headers['content-type'] = request.contentType
  const res = await fetch(base + request.path, {
    method: request.method,
    headers,
    body: request.body,
  })
  const text = await res.text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, body }
}

const out = []
for (const request of input.requests) {
  out.push({
    request,
    reference: await send(referenceUrl, request),
    ours: await send(input.url, request),
  })
}
listener.close()
writeOutput(out)
process.exit(0)
