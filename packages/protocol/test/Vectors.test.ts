import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { createHash, X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import { ErrorCode } from "../src/ErrorCode.ts"
import * as Frame from "../src/Frame.ts"
import { FrameDecoder } from "../src/FrameDecoder.ts"
import * as Hello from "../src/Hello.ts"

interface Vectors {
  readonly ca_cert_pem: string
  readonly bridge_leaf_cert_pem: string
  readonly info_hash: string
  readonly frames: Record<string, string> & {
    readonly hello_fields: {
      readonly version: number
      readonly role: number
      readonly max_wait_ms: number
      readonly traceparent: string
    }
  }
}

const vectors: Vectors = JSON.parse(
  readFileSync(new URL("./fixtures/protocol-vectors.json", import.meta.url), "utf8")
)
const frames = vectors.frames
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "hex"))
const caDer = new Uint8Array(new X509Certificate(vectors.ca_cert_pem).raw)
const leafDer = new Uint8Array(new X509Certificate(vectors.bridge_leaf_cert_pem).raw)
const nonce = Uint8Array.from({ length: 32 }, (_, i) => i)
const sessionId = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i)
const pingData = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])

const decodeOne = (bytes: Uint8Array): Frame.Frame => {
  const decoder = new FrameDecoder()
  decoder.push(bytes)
  const result = decoder.next()
  if (result._tag !== "Frame") throw new Error(`expected a frame, got ${result._tag}`)
  expect(decoder.bufferedLength).toBe(0)
  return result.frame
}

// The signature is the HELLO vector's own; pki checks it, here it only has to survive the round trip.
const helloSignature = (): Uint8Array => {
  const frame = decodeOne(unhex(frames.hello))
  if (frame._tag !== "Hello") throw new Error("expected HELLO")
  return frame.signature
}

describe("protocol vectors", () => {
  it("CHALLENGE encodes and decodes", () => {
    expect(hex(Frame.encodeFrame(Frame.challenge(nonce)))).toBe(frames.challenge)
    const frame = decodeOne(unhex(frames.challenge))
    expect(frame._tag).toBe("Challenge")
    if (frame._tag === "Challenge") {
      expect(frame.version).toBe(1)
      expect(hex(frame.nonce)).toBe(hex(nonce))
    }
  })

  it("the info hash is SHA-256 of the CA DER", () => {
    expect(createHash("sha256").update(caDer).digest("hex")).toBe(vectors.info_hash)
  })

  it("proof input", () => {
    expect(hex(Hello.proofInput(nonce, Frame.Role.bridge, unhex(vectors.info_hash)))).toBe(frames.proof_input)
  })

  it("HELLO decodes to the described fields", () => {
    const frame = decodeOne(unhex(frames.hello))
    expect(frame._tag).toBe("Hello")
    if (frame._tag !== "Hello") return
    expect(frame.version).toBe(frames.hello_fields.version)
    expect(frame.role).toBe(frames.hello_fields.role)
    expect(frame.maxWaitMs).toBe(frames.hello_fields.max_wait_ms)
    expect(frame.traceparent).toBe(frames.hello_fields.traceparent)
    expect(hex(frame.caDer)).toBe(hex(caDer))
    expect(hex(frame.leafDer)).toBe(hex(leafDer))
    expect(hex(frame.infoHash)).toBe(vectors.info_hash)
    expect(frame.signature.length).toBe(64)
  })

  it("HELLO encodes to exactly the vector", () => {
    const hello: Frame.HelloFrame = {
      _tag: "Hello",
      version: 1,
      role: Frame.Role.bridge,
      infoHash: unhex(vectors.info_hash),
      maxWaitMs: 30000,
      caDer,
      leafDer,
      signature: helloSignature(),
      traceparent: frames.hello_fields.traceparent
    }
    expect(hex(Frame.encodeFrame(hello))).toBe(frames.hello)
    const payload = Hello.encodeHello(hello)
    expect(Either.isRight(payload) && hex(payload.right)).toBe(frames.hello.slice(10))
    const decoded = Hello.decodeHello(unhex(frames.hello.slice(10)))
    expect(Either.isRight(decoded) && decoded.right.traceparent).toBe(frames.hello_fields.traceparent)
  })

  it("WAITING", () => {
    expect(hex(Frame.encodeFrame(Frame.waiting(sessionId, 20000)))).toBe(frames.waiting)
    expect(decodeOne(unhex(frames.waiting))).toMatchObject({ _tag: "Waiting", pingIntervalMs: 20000 })
    const frame = decodeOne(unhex(frames.waiting))
    expect(frame._tag === "Waiting" && hex(frame.sessionId)).toBe(hex(sessionId))
  })

  it("PAIRED", () => {
    expect(hex(Frame.encodeFrame(Frame.paired(sessionId)))).toBe(frames.paired)
    const frame = decodeOne(unhex(frames.paired))
    expect(frame._tag === "Paired" && hex(frame.sessionId)).toBe(hex(sessionId))
  })

  it("READY", () => {
    expect(hex(Frame.encodeFrame(Frame.ready))).toBe(frames.ready)
    expect(decodeOne(unhex(frames.ready))).toEqual({ _tag: "Ready" })
  })

  it("PING and PONG", () => {
    expect(hex(Frame.encodeFrame(Frame.ping(pingData)))).toBe(frames.ping)
    expect(hex(Frame.encodeFrame(Frame.pong(pingData)))).toBe(frames.pong)
    const ping = decodeOne(unhex(frames.ping))
    const pong = decodeOne(unhex(frames.pong))
    expect(ping._tag === "Ping" && hex(ping.data)).toBe(hex(pingData))
    expect(pong._tag === "Pong" && hex(pong.data)).toBe(hex(pingData))
  })

  it("ERROR wait_expired", () => {
    expect(hex(Frame.encodeFrame(Frame.error(ErrorCode.wait_expired, "no peer arrived")))).toBe(
      frames.error_wait_expired
    )
    expect(decodeOne(unhex(frames.error_wait_expired))).toEqual({
      _tag: "Error",
      code: ErrorCode.wait_expired,
      reason: "no peer arrived"
    })
  })
})
