// Runs the end-to-end suite once: starts the PLC directory, an SMTP server
// and the PDS under test (E2E_TARGET=ours, the default: target/debug/pds
// serve; or E2E_TARGET=reference: @atproto/pds), then runs every
// tests/*.test.mjs file (or the files given as arguments) with node:test
// against them, one file at a time.
//
// The test files learn where everything is from E2E_* variables (see
// lib/harness.mjs). They restart the PDS through a small control server on
// a loopback port (POST /restart), because the PDS is this process's child.
//
// Prints the node:test report, then one line `e2e: N passed, N failed`,
// and exits nonzero when anything failed. E2E_KEEP=1 keeps the temporary
// folder (data, mail, PDS log) for inspection; it is kept on failure anyway.
// E2E_SMTP=off (diagnosis only) leaves the mail settings out of the PDS's
// environment. E2E_TARGET=both (scripts/e2e-migration.sh) starts ours as the
// PDS under test and the reference beside it (E2E_REFERENCE_PDS_URL), for
// the migration suite in migration/.

import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'

import {
  PdsProcess,
  e2eDir,
  freePort,
  pdsEnvironment,
  sleep,
  startPlc,
  startSmtp,
  tail,
} from './lib/servers.mjs'
import { startAppView, startRelay } from './lib/standins.mjs'

const target = process.env.E2E_TARGET || 'ours'
// Largest blob upload the PDS accepts in this run (PDS_BLOB_UPLOAD_LIMIT).
const BLOB_UPLOAD_LIMIT = 100_000
// A hard limit on the whole run, so that nothing can hang a CI job.
const runLimitMs = Number(process.env.E2E_RUN_LIMIT_SECONDS || 900) * 1000

const workDir = mkdtempSync(path.join(tmpdir(), `atp-e2e-${target}-`))
const mailDir = path.join(workDir, 'mail')
const dataDir = path.join(workDir, 'data')
const pdsLog = path.join(workDir, 'pds.log')
const tapFile = path.join(workDir, 'report.tap')

const cleanups = []
let failedSetup = null

function summary(passed, failed) {
  console.log(`e2e: ${passed} passed, ${failed} failed`)
}

async function cleanup() {
  for (const fn of cleanups.reverse()) {
    try {
      await fn()
    } catch (err) {
      console.error(`e2e: cleanup: ${err?.message || err}`)
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    console.error(`e2e: ${signal}: stopping`)
    await cleanup()
    process.exit(130)
  })
}

const watchdog = setTimeout(async () => {
  console.error(`e2e: the run exceeded ${runLimitMs / 1000} s; stopping`)
  summary(0, 1)
  await cleanup()
  process.exit(1)
}, runLimitMs)
watchdog.unref()

function testFiles() {
  const given = process.argv.slice(2)
  if (given.length > 0) return given.map((f) => path.resolve(f))
  const dir = path.join(e2eDir, 'tests')
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.mjs'))
    .sort()
    .map((f) => path.join(dir, f))
}

/** The control server the test files use to restart the PDS. */
async function startControl(pds) {
  let busy = false
  const server = createServer(async (req, res) => {
    const answer = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.method === 'POST' && req.url === '/restart') {
      if (busy) return answer(409, { message: 'a restart is under way' })
      busy = true
      try {
        const exit = await pds.restart()
        answer(200, { exit })
      } catch (err) {
        answer(500, { message: String(err?.message || err) })
      } finally {
        busy = false
      }
      return
    }
    if (req.method === 'GET' && req.url === '/log') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      return res.end(tail(pdsLog, 200))
    }
    answer(404, { message: 'unknown control request' })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${server.address().port}`
}

function runTests(files, env) {
  return new Promise((resolve) => {
    const args = [
      '--test',
      '--test-concurrency=1',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tapFile}`,
      ...files,
    ]
    const child = spawn(process.execPath, args, {
      cwd: e2eDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

function countsFromTap() {
  let text = ''
  try {
    text = readFileSync(tapFile, 'utf8')
  } catch {
    return null
  }
  const count = (name) => {
    const m = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)
    return m ? Number(m[1]) : 0
  }
  if (!/^# tests \d+$/m.test(text)) return null
  return {
    passed: count('pass'),
    failed: count('fail') + count('cancelled'),
    skipped: count('skipped') + count('todo'),
  }
}

let exitCode = 1
try {
  console.log(`e2e: target ${target}, work folder ${workDir}`)
  const plc = await startPlc()
  cleanups.push(plc.stop)
  const smtp = await startSmtp(mailDir)
  cleanups.push(smtp.stop)
  const appView = await startAppView({ plcUrl: plc.url })
  cleanups.push(appView.stop)
  const relay = await startRelay()
  cleanups.push(relay.stop)
  const port = await freePort()
  const env = pdsEnvironment({ port, dataDir, plcUrl: plc.url, smtpUrl: smtp.url })
  // the stand-in peers, and a small blob limit (the oversized-blob step)
  env.PDS_BSKY_APP_VIEW_URL = appView.url
  env.PDS_BSKY_APP_VIEW_DID = appView.did
  env.PDS_CRAWLERS = relay.url
  env.PDS_BLOB_UPLOAD_LIMIT = String(BLOB_UPLOAD_LIMIT)
  if (process.env.E2E_SMTP === 'off') {
    // diagnosis only: a PDS that cannot mail yet still runs the other steps
    // (the mail steps then fail)
    delete env.PDS_EMAIL_SMTP_URL
    delete env.PDS_EMAIL_FROM_ADDRESS
    console.log('e2e: E2E_SMTP=off: the PDS gets no mail settings')
  }
  // E2E_TARGET=both (the migration suite): ours is the PDS under test and
  // the reference runs beside it on the same directory, mail and peers
  const primary = target === 'both' ? 'ours' : target
  const pds = new PdsProcess({ target: primary, env, logFile: pdsLog })
  cleanups.push(() => pds.stop())
  // never leave the PDS running behind an interrupted runner
  process.on('exit', () => pds.kill())
  await pds.start()
  console.log(`e2e: PDS (${primary}) at ${pds.url}, PLC at ${plc.url}, SMTP on ${smtp.port}`)
  const second = {}
  if (target === 'both') {
    const refPort = await freePort()
    const refEnv = {
      ...pdsEnvironment({ port: refPort, dataDir: path.join(workDir, 'reference-data'), plcUrl: plc.url, smtpUrl: smtp.url }),
      PDS_BSKY_APP_VIEW_URL: appView.url,
      PDS_BSKY_APP_VIEW_DID: appView.did,
      PDS_CRAWLERS: relay.url,
      PDS_BLOB_UPLOAD_LIMIT: String(BLOB_UPLOAD_LIMIT),
      // its own service DID, so that tokens for one are not good at the other
      PDS_SERVICE_DID: `did:web:localhost%3A${refPort}`,
    }
    const refLog = path.join(workDir, 'reference-pds.log')
    const ref = new PdsProcess({ target: 'reference', env: refEnv, logFile: refLog })
    cleanups.push(() => ref.stop())
    process.on('exit', () => ref.kill())
    await ref.start()
    console.log(`e2e: reference PDS beside it at ${ref.url} (log ${refLog})`)
    second.E2E_REFERENCE_PDS_URL = ref.url
    second.E2E_REFERENCE_SERVICE_DID = refEnv.PDS_SERVICE_DID
  }
  console.log(`e2e: stand-in AppView ${appView.did} at ${appView.url}, stand-in relay at ${relay.url}`)
  const control = await startControl(pds)

  const files = testFiles()
  const result = await runTests(files, {
    E2E_TARGET: primary,
    E2E_PDS_URL: pds.url,
    E2E_PLC_URL: plc.url,
    E2E_MAIL_DIR: mailDir,
    E2E_CONTROL_URL: control,
    E2E_JWT_SECRET: env.PDS_JWT_SECRET,
    E2E_ADMIN_PASSWORD: env.PDS_ADMIN_PASSWORD,
    E2E_PLC_ROTATION_KEY_HEX: env.PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX,
    E2E_SERVICE_DID: 'did:web:localhost',
    E2E_APPVIEW_URL: appView.url,
    E2E_APPVIEW_DID: appView.did,
    E2E_RELAY_URL: relay.url,
    E2E_BLOB_UPLOAD_LIMIT: env.PDS_BLOB_UPLOAD_LIMIT,
    ...second,
  })
  const counts = countsFromTap()
  const crashed = pds.exited()
  if (crashed) {
    console.error(
      `e2e: the PDS exited during the run (code ${crashed.code}, signal ${crashed.signal}); log:\n${tail(pdsLog)}`,
    )
  }
  if (!counts) {
    console.error(`e2e: the test runner produced no report (exit ${result.code}, signal ${result.signal})`)
    summary(0, 1)
  } else {
    let { passed, failed } = counts
    if ((result.code !== 0 || crashed) && failed === 0) failed = 1
    if (failed > 0 && !crashed) console.error(`e2e: last lines of the PDS log:\n${tail(pdsLog, 30)}`)
    summary(passed, failed)
    if (failed === 0) exitCode = 0
  }
} catch (err) {
  failedSetup = err
  console.error(`e2e: setup failed: ${err?.message || err}`)
  summary(0, 1)
}

clearTimeout(watchdog)
await cleanup()
if (exitCode !== 0 || process.env.E2E_KEEP === '1') {
  console.log(`e2e: kept ${workDir} (PDS log: ${pdsLog}, mail: ${mailDir})`)
} else {
  // the PDS may still be flushing files for a moment after its exit
  await sleep(100)
  rmSync(workDir, { recursive: true, force: true })
}
process.exit(failedSetup ? 1 : exitCode)
