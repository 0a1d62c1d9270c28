// Password hashes in the reference PDS's stored form: scrypt with Node's
// defaults (N=16384, r=8, p=1), 64-byte key, stored as `<salt hex>:<hash hex>`
// with the salt used as its hex text.
//
// Input: { make: [password...], check: [{ password, stored, candidate }] }
// Output: { made: [stored...], checked: [bool...] } where `made` are hashes
// the Rust side must accept, and `checked` says whether Node's scrypt over the
// Rust-written `$scrypt$ln=14,r=8,p=1$<salt hex>$<hash hex>` values matches
// `candidate`.
import crypto from 'node:crypto'
import { readInput, writeOutput } from './lib/io.mjs'

const input = await readInput()

const made = input.make.map((password) => {
  const salt = crypto.randomBytes(16).toString('hex')
  const hash = crypto.scryptSync(password, salt, 64)
  return `${salt}:${hash.toString('hex')}`
})

const checked = input.check.map(({ stored, candidate }) => {
  const match = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([0-9a-f]+)\$([0-9a-f]+)$/.exec(stored)
  if (!match) throw new Error(`unexpected hash format: ${stored}`)
  const [, ln, r, p, saltHex, hashHex] = match
  const expected = Buffer.from(hashHex, 'hex')
  const derived = crypto.scryptSync(candidate, Buffer.from(saltHex, 'hex'), expected.length, {
    N: 2 ** Number(ln),
    r: Number(r),
    p: Number(p),
  })
  return crypto.timingSafeEqual(derived, expected)
})

writeOutput({ made, checked })
