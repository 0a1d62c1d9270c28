// A firehose consumer from the reference implementation (@atproto/sync's
// Firehose) reading our PDS's subscribeRepos with authenticated commits:
// every #commit's signature and MST proofs are checked against the DID's
// signing key, resolved at the test's PLC directory.
//
// Input: {service: "ws://host:port", plcUrl, cursor (optional), untilSeq,
// timeoutMs}. Reads until an event with seq >= untilSeq has been handled
// (or the timeout passes), then stops.
//
// Output: {events: [...], errors: [...], timedOut}. Events, in the order
// handled: commits as one entry per verified op {seq, event: "create" |
// "update" | "delete", did, path, cid (null for delete)}; {seq, event:
// "identity", did}; {seq, event: "account", did, active, status}; {seq,
// event: "sync", did, rev, cid}. Errors are the messages of every error
// the consumer reported (parse, verification, subscription, validation).
import { Firehose } from '@atproto/sync'
import { IdResolver } from '@atproto/identity'
import { readInput, writeOutput } from './lib/io.mjs'

function describe(evt) {
  switch (evt.event) {
    case 'create':
    case 'update':
      return {
        seq: evt.seq,
        event: evt.event,
        did: evt.did,
        path: `${evt.collection}/${evt.rkey}`,
        cid: evt.cid.toString(),
      }
    case 'delete':
      return {
        seq: evt.seq,
        event: 'delete',
        did: evt.did,
        path: `${evt.collection}/${evt.rkey}`,
        cid: null,
      }
    case 'identity':
      return { seq: evt.seq, event: 'identity', did: evt.did }
    case 'account':
      return {
        seq: evt.seq,
        event: 'account',
        did: evt.did,
        active: evt.active,
        status: evt.status ?? null,
      }
    case 'sync':
      return { seq: evt.seq, event: 'sync', did: evt.did, rev: evt.rev, cid: evt.cid.toString() }
    default:
      return { seq: evt.seq, event: String(evt.event) }
  }
}

function message(err) {
  const parts = []
  let current = err
  while (current) {
    parts.push(current.message ?? String(current))
    current = current.cause
  }
  return parts.join(': ')
}

const input = await readInput()
const events = []
const errors = []
let finish
const done = new Promise((resolve) => {
  finish = resolve
})

// The directory is on loopback: plain fetch instead of the SSRF-guarded one.
const idResolver = new IdResolver({ plcUrl: input.plcUrl, timeout: 5000, fetch: globalThis.fetch })
const firehose = new Firehose({
  service: input.service,
  idResolver,
  unauthenticatedCommits: false,
  unauthenticatedHandles: true,
  subscriptionReconnectDelay: 200,
  getCursor: async () => input.cursor ?? undefined,
  handleEvent: async (evt) => {
    events.push(describe(evt))
    if (evt.seq >= input.untilSeq) finish(false)
  },
  onError: (err) => {
    errors.push(message(err))
  },
})

const timer = setTimeout(() => finish(true), input.timeoutMs ?? 60000)
firehose.start()
const timedOut = await done
clearTimeout(timer)
await firehose.destroy()
writeOutput({ events, errors, timedOut })
process.exit(0)
