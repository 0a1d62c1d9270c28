// What the reference PDS records for an uploaded blob: its CID (raw codec,
// sha2-256) and its MIME type, sniffed with the same `file-type` parser the
// reference's blob transactor uses (falling back to the declared type when
// the bytes say nothing).
//
// Input: {"declared": "<content type>", "samples": [{"name", "hex"}]}
// Output: {"results": [{"name", "cid", "mimeType", "size"}]}
//
// As in the reference, the parser reads the upload as a stream (a strtok3
// tokenizer): a structure cut short makes it give up, and the declared
// type is kept.

import { PassThrough } from 'node:stream'
import { FileTypeParser } from 'file-type'
import { fromStream } from 'strtok3'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { hex, readInput, writeOutput } from './lib/io.mjs'

const RAW = 0x55

const input = await readInput()
const results = []
for (const sample of input.samples) {
  const bytes = hex.decode(sample.hex)
  let sniffed
  try {
    // A byte stream, like the branch of the upload the reference reads.
    const stream = new PassThrough()
    stream.end(bytes)
    const tokenizer = await fromStream(stream)
    sniffed = await new FileTypeParser().fromTokenizer(tokenizer)
  } catch {
    sniffed = undefined
  }
  const digest = await sha256.digest(bytes)
  results.push({
    name: sample.name,
    cid: CID.create(1, RAW, digest).toString(),
    mimeType: sniffed?.mime || input.declared,
    size: bytes.length,
  })
}
writeOutput({ results })
