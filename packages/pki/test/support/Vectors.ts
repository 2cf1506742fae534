/**
 * Test support: the protocol vectors (a copy of those published with PROTOCOL.md) and a reader for their HELLO.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

export interface Vectors {
  readonly ca_cert_pem: string
  readonly bridge_leaf_cert_pem: string
  readonly bridge_leaf_key_pem: string
  readonly info_hash: string
  readonly frames: { readonly hello: string; readonly proof_input: string }
}

const vectorsPath = fileURLToPath(new URL("../fixtures/protocol-vectors.json", import.meta.url))

export const vectors: Vectors = JSON.parse(readFileSync(vectorsPath, "utf8"))

export interface HelloFields {
  readonly role: number
  readonly infoHash: Uint8Array
  readonly caDer: Uint8Array
  readonly leafDer: Uint8Array
  readonly signature: Uint8Array
}

/** Reads a HELLO frame by the PROTOCOL.md layout; throws on anything malformed, which fails the test. */
export const readHello = (frameHex: string): HelloFields => {
  const frame = Buffer.from(frameHex, "hex")
  if (frame[0] !== 0x02 || frame.readUInt32BE(1) !== frame.length - 5) throw new Error("not one HELLO frame")
  let at = 5
  const take = (n: number) => {
    if (at + n > frame.length) throw new Error("HELLO field runs past the frame")
    const bytes = new Uint8Array(frame.subarray(at, at + n))
    at += n
    return bytes
  }
  const lengthPrefixed = () => take(take(2).reduce((length, byte) => length * 256 + byte, 0))
  take(1)
  const role = take(1)[0]!
  const infoHash = take(32)
  take(4)
  const caDer = lengthPrefixed()
  const leafDer = lengthPrefixed()
  const signature = lengthPrefixed()
  take(take(1)[0]!)
  if (at !== frame.length) throw new Error("HELLO fields do not fill the payload")
  return { role, infoHash, caDer, leafDer, signature }
}
