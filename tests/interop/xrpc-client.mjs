// Calls a Rust XRPC server with the reference client (@atproto/xrpc) and
// through @atproto/api's AtpAgent (which validates the output against the
// lexicon), and reads one of its subscriptions with the reference event-stream reader
// (@atproto/xrpc-server's Subscription). Input: {"url": "http://127.0.0.1:PORT"}.
// Output: what the reference saw, for the Rust side to assert on.
import { createHash } from 'node:crypto'
import { AtpAgent } from '@atproto/api'
import { XrpcClient, XRPCError } from '@atproto/xrpc'
import { Subscription } from '@atproto/xrpc-server'
import { readInput, writeOutput } from './lib/io.mjs'

const lexicons = [
  {
    lexicon: 1,
    id: 'com.example.hello',
    defs: {
      main: {
        type: 'query',
        parameters: {
          type: 'params',
          required: ['name'],
          properties: {
            name: { type: 'string' },
            count: { type: 'integer' },
            loud: { type: 'boolean' },
            tags: { type: 'array', items: { type: 'string' } },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['message'],
            properties: {
              message: { type: 'string' },
              count: { type: 'integer' },
              loud: { type: 'boolean' },
              tags: { type: 'array', items: { type: 'string' } },
            },
          },
        },
        errors: [{ name: 'NameRefused' }],
      },
    },
  },
  {
    lexicon: 1,
    id: 'com.example.echo',
    defs: {
      main: {
        type: 'procedure',
        input: { encoding: 'application/json', schema: { type: 'object', properties: { text: { type: 'string' } } } },
        output: { encoding: 'application/json', schema: { type: 'object', properties: { text: { type: 'string' } } } },
      },
    },
  },
  {
    lexicon: 1,
    id: 'com.example.upload',
    defs: {
      main: {
        type: 'procedure',
        input: { encoding: '*/*' },
        output: { encoding: 'application/octet-stream' },
      },
    },
  },
  {
    lexicon: 1,
    id: 'com.example.missing',
    defs: { main: { type: 'query', output: { encoding: 'application/json' } } },
  },
]

function describeError(err) {
  if (err instanceof XRPCError) {
    return { xrpcError: true, status: err.status, error: err.error, message: err.message }
  }
  return { xrpcError: false, text: String(err) }
}

async function attempt(fn) {
  try {
    return { ok: await fn() }
  } catch (err) {
    return { err: describeError(err) }
  }
}

const input = await readInput()
const client = new XrpcClient(input.url, lexicons)
const out = {}

out.hello = await attempt(async () => {
  const res = await client.call('com.example.hello', {
    name: 'alice & bob',
    count: 3,
    loud: true,
    tags: ['a b', 'c/d'],
  })
  return res.data
})
out.refused = await attempt(() => client.call('com.example.hello', { name: 'refuse' }))
out.missing = await attempt(() => client.call('com.example.missing'))
out.echo = await attempt(async () => (await client.call('com.example.echo', {}, { text: 'héllo' })).data)

// The same service through @atproto/api: the agent knows the example's
// lexicons and validates what the server answers against them.
const agent = new AtpAgent({ service: input.url })
for (const doc of lexicons) agent.lex.add(doc)
out.agentHello = await attempt(async () => (await agent.call('com.example.hello', { name: 'carol' })).data)
out.agentRefused = await attempt(() => agent.call('com.example.hello', { name: 'refuse' }))

const payload = new Uint8Array(100_000).map((_, i) => (i * 31) % 251)
out.upload = await attempt(async () => {
  const res = await client.call('com.example.upload', {}, payload, {
    encoding: 'application/octet-stream',
  })
  const bytes = new Uint8Array(res.data)
  return {
    length: bytes.length,
    sameBytes: Buffer.compare(Buffer.from(bytes), Buffer.from(payload)) === 0,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  }
})

const wsService = input.url.replace(/^http/, 'ws')
async function readSubscription(cursor, max) {
  const controller = new AbortController()
  const sub = new Subscription({
    service: wsService,
    method: 'com.example.countdown',
    getParams: () => ({ cursor }),
    validate: (value) => value,
    signal: controller.signal,
    maxReconnectSeconds: 1,
  })
  const seen = []
  try {
    for await (const message of sub) {
      seen.push(message)
      if (seen.length >= max) break
    }
  } finally {
    controller.abort()
  }
  return seen
}
out.subscription = await attempt(() => readSubscription(7, 3))
out.futureCursor = await attempt(() => readSubscription(1_000_000, 1))

writeOutput(out)
process.exit(0)
