// Shared plumbing for the interop scripts: each script reads one JSON value
// on standard input and prints one JSON value on standard output.

export async function readInput() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const text = Buffer.concat(chunks).toString('utf8')
  return text.trim() === '' ? null : JSON.parse(text)
}

export function writeOutput(value) {
  process.stdout.write(JSON.stringify(value))
}

export const hex = {
  encode: (bytes) => Buffer.from(bytes).toString('hex'),
  decode: (text) => new Uint8Array(Buffer.from(text, 'hex')),
}
