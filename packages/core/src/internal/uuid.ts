/**
 * Name-based UUIDs (RFC 9562 version 5: SHA-1 of a namespace and a name), without dependencies: the deterministic
 * event ids of commands handled with a `commandId`.
 *
 * @internal
 */

const encoder = new TextEncoder()

const rotl = (x: number, n: number): number => (x << n) | (x >>> (32 - n))

/** SHA-1 (FIPS 180-4) of `message`: 20 bytes. */
export const sha1 = (message: Uint8Array): Uint8Array => {
  const length = message.length
  // the message, a 1 bit, zeros, and the length in bits (64-bit big-endian) to a multiple of 64 bytes
  const padded = new Uint8Array(((length + 8) >>> 6) + 1 << 6)
  padded.set(message)
  padded[length] = 0x80
  const view = new DataView(padded.buffer)
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000))
  view.setUint32(padded.length - 4, (length * 8) >>> 0)
  let h0 = 0x67452301
  let h1 = 0xefcdab89
  let h2 = 0x98badcfe
  let h3 = 0x10325476
  let h4 = 0xc3d2e1f0
  const w = new Uint32Array(80)
  for (let block = 0; block < padded.length; block += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(block + t * 4)
    for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1)
    let a = h0
    let b = h1
    let c = h2
    let d = h3
    let e = h4
    for (let t = 0; t < 80; t++) {
      const f = t < 20
        ? ((b & c) | (~b & d)) + 0x5a827999
        : t < 40
        ? (b ^ c ^ d) + 0x6ed9eba1
        : t < 60
        ? ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc
        : (b ^ c ^ d) + 0xca62c1d6
      const temp = (rotl(a, 5) + f + e + w[t]!) | 0
      e = d
      d = c
      c = rotl(b, 30)
      b = a
      a = temp
    }
    h0 = (h0 + a) | 0
    h1 = (h1 + b) | 0
    h2 = (h2 + c) | 0
    h3 = (h3 + d) | 0
    h4 = (h4 + e) | 0
  }
  const out = new Uint8Array(20)
  const outView = new DataView(out.buffer)
  outView.setUint32(0, h0 >>> 0)
  outView.setUint32(4, h1 >>> 0)
  outView.setUint32(8, h2 >>> 0)
  outView.setUint32(12, h3 >>> 0)
  outView.setUint32(16, h4 >>> 0)
  return out
}

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

/** The 16 bytes of a uuid given in its text form. */
export const parse = (uuid: string): Uint8Array => {
  const digits = uuid.replace(/-/g, "")
  if (!/^[0-9a-fA-F]{32}$/.test(digits)) throw new TypeError(`not a uuid: ${uuid}`)
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(digits.slice(i * 2, i * 2 + 2), 16)
  return bytes
}

/** The version 5 uuid of `name` (UTF-8) in `namespace` (16 bytes), in lower case. */
export const v5 = (namespace: Uint8Array, name: string): string => {
  const nameBytes = encoder.encode(name)
  const input = new Uint8Array(16 + nameBytes.length)
  input.set(namespace)
  input.set(nameBytes, 16)
  const hash = sha1(input)
  hash[6] = (hash[6]! & 0x0f) | 0x50
  hash[8] = (hash[8]! & 0x3f) | 0x80
  let out = ""
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += "-"
    out += hex[hash[i]!]
  }
  return out
}

/** The namespace of the event ids of commands (a fixed random uuid). */
const eventIdNamespace = parse("4f3d3e0c-8a55-4c1e-9d1b-5c6f2a7e91b4")

/**
 * The id of the `index`-th event (from 0) decided by the command `commandId` for the stream `streamId` of the
 * aggregate `aggregate`: the version 5 uuid of the JSON array `[aggregate, streamId, commandId, index]`.
 */
export const eventId = (aggregate: string, streamId: string, commandId: string, index: number): string =>
  v5(eventIdNamespace, JSON.stringify([aggregate, streamId, commandId, index]))
