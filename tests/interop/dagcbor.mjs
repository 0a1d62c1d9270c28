// Cross-implementation check of canonical DAG-CBOR and CIDs against
// @ipld/dag-cbor + multiformats.
//
// Input:  { cases: [{ value, rustHex, rustCid }] } where `value` is a tagged
//         description of a data-model value (so 64-bit integers and bytes
//         survive JSON): ["null"], ["bool", b], ["int", "<decimal>"],
//         ["str", s], ["bytes", "<hex>"], ["link", "<cid>"],
//         ["list", [v...]], ["map", [[key, v]...]].
// Output: { results: [{ jsHex, jsCid, rustCidByJs, decodedRust, rustDecodeError,
//           rustReencodesSame }] }
//   jsHex / jsCid: what the reference encoder makes of `value`;
//   rustCidByJs:   the CID the reference computes over the Rust bytes;
//   decodedRust:   whether decoding the Rust bytes gives back `value`;
//   rustReencodesSame: whether re-encoding that decoded value gives the
//                  Rust bytes again.
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { readInput, writeOutput, hex } from './lib/io.mjs'

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

function toJs(t) {
  switch (t[0]) {
    case 'null':
      return null
    case 'bool':
      return t[1]
    case 'int': {
      const b = BigInt(t[1])
      return b >= -MAX_SAFE && b <= MAX_SAFE ? Number(b) : b
    }
    case 'str':
      return t[1]
    case 'bytes':
      return hex.decode(t[1])
    case 'link':
      return CID.parse(t[1])
    case 'list':
      return t[1].map(toJs)
    case 'map': {
      const obj = {}
      for (const [k, v] of t[1]) {
        if (Object.prototype.hasOwnProperty.call(obj, k)) {
          throw new Error(`duplicate key ${k}`)
        }
        Object.defineProperty(obj, k, {
          value: toJs(v),
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
      return obj
    }
    default:
      throw new Error(`unknown tag ${t[0]}`)
  }
}

// Back to the tagged form, with map entries in one fixed order so two
// descriptions of the same value compare equal as strings.
function toTagged(v) {
  if (v === null) return ['null']
  if (typeof v === 'boolean') return ['bool', v]
  if (typeof v === 'bigint') return ['int', v.toString()]
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return ['float', v]
    return ['int', BigInt(v).toString()]
  }
  if (typeof v === 'string') return ['str', v]
  if (v instanceof Uint8Array) return ['bytes', hex.encode(v)]
  const cid = CID.asCID(v)
  if (cid) return ['link', cid.toString()]
  if (Array.isArray(v)) return ['list', v.map(toTagged)]
  if (typeof v === 'object') {
    return ['map', Object.keys(v).sort().map((k) => [k, toTagged(v[k])])]
  }
  throw new Error(`unexpected value of type ${typeof v}`)
}

function normalize(t) {
  return JSON.stringify(toTagged(toJs(t)))
}

async function cidOf(bytes) {
  return CID.create(1, dagCbor.code, await sha256.digest(bytes)).toString()
}

const input = await readInput()
const results = []
for (const c of input.cases) {
  const value = toJs(c.value)
  const jsBytes = dagCbor.encode(value)
  const rustBytes = hex.decode(c.rustHex)
  const result = {
    jsHex: hex.encode(jsBytes),
    jsCid: await cidOf(jsBytes),
    rustCidByJs: await cidOf(rustBytes),
    decodedRust: false,
    rustDecodeError: null,
    rustReencodesSame: false,
  }
  try {
    const decoded = dagCbor.decode(rustBytes)
    result.decodedRust = JSON.stringify(toTagged(decoded)) === normalize(c.value)
    result.rustReencodesSame = hex.encode(dagCbor.encode(decoded)) === c.rustHex
  } catch (e) {
    result.rustDecodeError = String(e && e.message ? e.message : e)
  }
  results.push(result)
}
writeOutput({ results })
