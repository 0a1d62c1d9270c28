// Runs the reference PLC directory (@did-plc/server) with its in-memory
// database on a loopback port, for cross-implementation tests.
//
// Prints one JSON line `{"port": N}` once the server listens, then keeps
// serving until standard input closes (the test dropped its end), and exits.
// Standard input carries no data: it only ties the server's lifetime to the
// test's. The operating system picks the port. Request logging stays off
// (pino is disabled unless LOG_ENABLED is set), so stdout holds only the port.

import { PlcServer, Database } from '@did-plc/server'

const server = PlcServer.create({ db: Database.mock(), port: 0 })
const http = await server.start()
const { port } = http.address()
process.stdout.write(JSON.stringify({ port }) + '\n')

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await server.destroy()
  process.exit(0)
}
process.stdin.on('data', () => {})
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
