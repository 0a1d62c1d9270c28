// Starts the reference PDS (@atproto/pds) from PDS_* environment variables,
// the way its own service entry point does: readEnv -> envToCfg /
// envToSecrets -> PDS.create -> start. Used by the end-to-end suite when
// E2E_TARGET=reference, in place of our `pds serve`.
//
// Runs on the Node.js pinned in this folder's package.json (the package
// needs Node >= 22). Prints one JSON line `{"listening": PORT}` once the
// server accepts requests; stops cleanly on SIGTERM or SIGINT.

import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'

const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
await pds.start()
process.stdout.write(JSON.stringify({ listening: pds.ctx.cfg.service.port }) + '\n')

let stopping = false
const stop = async (signal) => {
  if (stopping) return
  stopping = true
  try {
    await pds.destroy()
  } catch (err) {
    process.stderr.write(`reference pds: error while stopping on ${signal}: ${err}\n`)
    process.exit(1)
  }
  process.exit(0)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
