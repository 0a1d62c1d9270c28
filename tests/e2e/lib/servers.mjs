// The servers one suite run needs: the PLC directory (reference
// @did-plc/server, in-memory), a real SMTP server that keeps delivered mail,
// and the PDS under test (our `pds serve` or the reference @atproto/pds) as
// a child process configured through reference-style PDS_* variables.

import { spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Database, PlcServer } from '@did-plc/server'

const here = path.dirname(fileURLToPath(import.meta.url))
/** The e2e folder (tests/e2e). */
export const e2eDir = path.resolve(here, '..')
/** The repository root. */
export const repoRoot = path.resolve(e2eDir, '..', '..')

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Starts the reference PLC directory with its in-memory database. */
export async function startPlc() {
  const server = PlcServer.create({ db: Database.mock(), port: 0 })
  const http = await server.start()
  const { port } = http.address()
  return {
    // a name, not an IP address: the reference PDS's resolver refuses
    // IP-literal hosts
    url: `http://localhost:${port}`,
    stop: () => server.destroy(),
  }
}

/** Reads the first line a child prints on stdout, or fails after `ms`. */
function firstLine(child, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(
      () => reject(new Error(`${what} did not report within ${ms / 1000} s`)),
      ms,
    )
    const onData = (chunk) => {
      buf += chunk.toString()
      const nl = buf.indexOf('\n')
      if (nl >= 0) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        resolve(buf.slice(0, nl).trim())
      }
    }
    child.stdout.on('data', onData)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (code ${code}, signal ${signal}) before reporting`))
    })
  })
}

/**
 * Starts a real SMTP server (tests/python/smtp_sink.py: aiosmtpd in the
 * Python venv) that writes every delivered message as a file into
 * `mailDir` and prints its port on the first line.
 */
export async function startSmtp(mailDir) {
  mkdirSync(mailDir, { recursive: true })
  const python =
    process.env.E2E_PYTHON || path.join(repoRoot, 'tests', 'python', '.venv', 'bin', 'python')
  if (!existsSync(python)) {
    throw new Error(`no Python venv at ${python}: run ./scripts/python-env.sh first`)
  }
  const script = path.join(repoRoot, 'tests', 'python', 'smtp_sink.py')
  const child = spawn(python, [script, mailDir], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await firstLine(child, 20_000, 'the SMTP server')
  const port = Number(/\d+/.exec(line)?.[0])
  if (!port) throw new Error(`the SMTP server printed no port: ${JSON.stringify(line)}`)
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5_000)])
    },
  }
}

/** A fresh secp256k1 private key as 64 hex digits (the PLC rotation key). */
export function k256PrivateKeyHex() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' })
  const d = privateKey.export({ format: 'jwk' }).d
  return Buffer.from(d, 'base64url').toString('hex').padStart(64, '0')
}

/** The reference-style environment of the PDS under test. */
export function pdsEnvironment({ port, dataDir, plcUrl, smtpUrl }) {
  return {
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(port),
    PDS_DATA_DIRECTORY: dataDir,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blocks'),
    PDS_DID_PLC_URL: plcUrl,
    PDS_JWT_SECRET: randomBytes(16).toString('hex'),
    PDS_ADMIN_PASSWORD: randomBytes(12).toString('hex'),
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: k256PrivateKeyHex(),
    PDS_SERVICE_HANDLE_DOMAINS: '.test',
    PDS_EMAIL_SMTP_URL: smtpUrl,
    PDS_EMAIL_FROM_ADDRESS: 'noreply@pds.test',
    PDS_DEV_MODE: 'true',
    PDS_INVITE_REQUIRED: 'false',
  }
}

/** How to run the PDS under test: `ours` or `reference`. */
export function pdsCommand(target) {
  if (target === 'ours') {
    const bin = process.env.E2E_PDS_BIN || path.join(repoRoot, 'target', 'debug', 'pds')
    if (!existsSync(bin)) throw new Error(`no pds binary at ${bin}: run cargo build -p pds`)
    return { command: bin, args: ['serve'], extraEnv: { RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' } }
  }
  if (target === 'reference') {
    const refDir = path.join(e2eDir, 'reference')
    if (!existsSync(path.join(refDir, 'node_modules', '@atproto', 'pds'))) {
      throw new Error(`reference PDS not installed in ${refDir}: run ./scripts/e2e-reference.sh`)
    }
    // the Node.js the suite runs on (pinned in tests/e2e/package.json)
    return {
      command: process.execPath,
      args: [path.join(refDir, 'launch.mjs')],
      extraEnv: { LOG_ENABLED: process.env.LOG_ENABLED || 'true', LOG_LEVEL: 'info' },
    }
  }
  throw new Error(`E2E_TARGET must be "ours" or "reference", not ${JSON.stringify(target)}`)
}

/** The last `n` lines of a log file (for failure messages). */
export function tail(file, n = 40) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * The PDS under test as a child process. `start()` waits until
 * describeServer answers 200 (or fails with the log tail when the process
 * exits or `readyMs` passes); `stop()` sends SIGTERM and waits for the exit.
 */
export class PdsProcess {
  constructor({ target, env, logFile, readyMs = 90_000 }) {
    this.target = target
    this.env = env
    this.logFile = logFile
    this.readyMs = readyMs
    this.url = `http://localhost:${env.PDS_PORT}`
    this.child = null
    this.starts = 0
  }

  async start() {
    const { command, args, extraEnv } = pdsCommand(this.target)
    mkdirSync(this.env.PDS_BLOBSTORE_DISK_LOCATION, { recursive: true })
    this.starts += 1
    const log = createWriteStream(this.logFile, { flags: 'a' })
    log.write(`\n===== start #${this.starts}: ${command} ${args.join(' ')} =====\n`)
    const child = spawn(command, args, {
      env: { ...process.env, ...this.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.pipe(log, { end: false })
    child.stderr.pipe(log, { end: false })
    this.child = child
    let exited = null
    child.once('exit', (code, signal) => {
      exited = { code, signal }
      log.write(`===== exited: code ${code}, signal ${signal} =====\n`)
    })
    const deadline = Date.now() + this.readyMs
    let lastError = 'no answer yet'
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(
          `the ${this.target} PDS exited (code ${exited.code}, signal ${exited.signal}) before it answered; log:\n${tail(this.logFile)}`,
        )
      }
      try {
        const res = await fetch(`${this.url}/xrpc/com.atproto.server.describeServer`, {
          signal: AbortSignal.timeout(2_000),
        })
        if (res.status === 200) return
        lastError = `HTTP ${res.status}: ${await res.text()}`
      } catch (err) {
        lastError = String(err?.cause?.code || err?.message || err)
      }
      await sleep(200)
    }
    throw new Error(
      `the ${this.target} PDS did not answer describeServer within ${this.readyMs / 1000} s (${lastError}); log:\n${tail(this.logFile)}`,
    )
  }

  async stop() {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    child.kill('SIGTERM')
    const result = await Promise.race([exited, sleep(15_000).then(() => null)])
    if (result === null) {
      child.kill('SIGKILL')
      await exited
      throw new Error(`the ${this.target} PDS did not stop within 15 s of SIGTERM (killed)`)
    }
    return result
  }

  /** How the current process ended ({code, signal}), or null while it runs. */
  exited() {
    const child = this.child
    if (!child || (child.exitCode === null && child.signalCode === null)) return null
    return { code: child.exitCode, signal: child.signalCode }
  }

  /** Kills the process at once (for an exiting runner; no waiting). */
  kill() {
    const child = this.child
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }

  async restart() {
    const result = await this.stop()
    await this.start()
    return result
  }
}
