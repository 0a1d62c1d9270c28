// Runs the reference syntax validators (@atproto/syntax) and TID encoder
// (@atproto/common-web) over inputs chosen by the Rust test
// `crates/atp-syntax/tests/reference_cross_check.rs`.
//
// Input:  { strings: [..], tids: [[micros, clockId], ..], decode: [tidString, ..] }
// Output: { valid: { kind: [bool, ..] }, normalized: [string|null, ..],
//           tids: [string, ..], decoded: [[micros, clockId], ..] }

import * as syntax from '@atproto/syntax'
import { TID } from '@atproto/common-web'
import { readInput, writeOutput } from './lib/io.mjs'

const input = await readInput()
const strings = input.strings

const checks = {
  did: syntax.isValidDid,
  handle: syntax.isValidHandle,
  at_identifier: syntax.isAtIdentifierString,
  nsid: syntax.isValidNsid,
  at_uri: (s) => syntax.isAtUriString(s),
  tid: syntax.isValidTid,
  record_key: syntax.isValidRecordKey,
  datetime: syntax.isDatetimeString,
  language: (s) => syntax.parseLanguageString(s) !== null,
  language_well_formed: syntax.isValidLanguage,
  uri: syntax.isValidUri,
}

const valid = {}
for (const [kind, check] of Object.entries(checks)) {
  valid[kind] = strings.map((s) => {
    try {
      return Boolean(check(s))
    } catch {
      return false
    }
  })
}

const normalized = strings.map((s) => {
  try {
    return syntax.normalizeDatetime(s)
  } catch {
    return null
  }
})

const tids = input.tids.map(([micros, clockId]) =>
  TID.fromTime(micros, clockId).toString(),
)
const decoded = input.decode.map((str) => {
  const tid = TID.fromStr(str)
  return [tid.timestamp(), tid.clockid()]
})

writeOutput({ valid, normalized, tids, decoded })
