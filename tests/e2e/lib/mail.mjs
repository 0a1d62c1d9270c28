// Reads the mail the SMTP server delivered into a folder: a small MIME
// reader (headers, multipart bodies, quoted-printable and base64 parts),
// enough to find what a PDS mails to its users.

import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

/** Splits a raw message (or MIME part) into its header map and body. */
export function splitMessage(raw) {
  const text = raw.replace(/\r\n/g, '\n')
  const end = text.indexOf('\n\n')
  const head = end >= 0 ? text.slice(0, end) : text
  const body = end >= 0 ? text.slice(end + 2) : ''
  const headers = {}
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] ? `${headers[name]}, ${value}` : value
  }
  return { headers, body }
}

/** Decodes RFC 2047 encoded words (`=?utf-8?Q?...?=`, `=?utf-8?B?...?=`). */
export function decodeHeader(value = '') {
  return value.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _charset, enc, data) => {
    if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString('utf8')
    const bytes = data
      .replace(/_/g, ' ')
      .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex) => String.fromCharCode(parseInt(hex, 16)))
    return Buffer.from(bytes, 'latin1').toString('utf8')
  })
}

function decodeTransfer(body, encoding = '') {
  const enc = encoding.toLowerCase()
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  if (enc === 'quoted-printable') {
    const bytes = body
      .replace(/=\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex) => String.fromCharCode(parseInt(hex, 16)))
    return Buffer.from(bytes, 'latin1').toString('utf8')
  }
  return body
}

/** Every decoded text part of a message (text/plain and text/html). */
export function textParts(raw) {
  const { headers, body } = splitMessage(raw)
  const type = headers['content-type'] || 'text/plain'
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1]
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary}`).slice(1)
    const out = []
    for (const part of parts) {
      if (part.startsWith('--')) break
      out.push(...textParts(part.replace(/^\n/, '')))
    }
    return out
  }
  if (!/^text\//i.test(type)) return []
  return [decodeTransfer(body, headers['content-transfer-encoding'])]
}

/** A delivered message: file name, headers, subject, recipients and text. */
export function readMessage(file) {
  const raw = readFileSync(file, 'utf8')
  const { headers } = splitMessage(raw)
  const recipients = [headers['x-envelope-to'], headers.to, headers.cc]
    .filter(Boolean)
    .join(', ')
    .toLowerCase()
  return {
    file: path.basename(file),
    headers,
    subject: decodeHeader(headers.subject),
    from: decodeHeader(headers.from),
    recipients,
    text: textParts(raw).join('\n'),
  }
}

/** The messages in `dir`, oldest first. */
export function listMessages(dir) {
  let names = []
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  // <n>.eml, numbered in order of delivery: sort by number, not as text
  const number = (name) => Number(/^\d+/.exec(name)?.[0] ?? Number.MAX_SAFE_INTEGER)
  return names
    .filter((n) => !n.startsWith('.'))
    .sort((a, b) => number(a) - number(b) || a.localeCompare(b))
    .map((n) => readMessage(path.join(dir, n)))
}

/** The one-time code the reference PDS mails (`XXXXX-XXXXX`, base32). */
export function findToken(text) {
  return /\b[A-Z2-7]{5}-[A-Z2-7]{5}\b/.exec(text)?.[0] ?? null
}
