import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { ErrorCode, errorCodeName } from "../src/ErrorCode.ts"
import * as Frame from "../src/Frame.ts"
import { FrameDecoder } from "../src/FrameDecoder.ts"
import * as Hello from "../src/Hello.ts"

const bytes = (...values: Array<number>): Uint8Array => Uint8Array.from(values)
const sessionId = new Uint8Array(16).fill(7)

const failureOf = (decoder: FrameDecoder): string => {
  const result = decoder.next()
  return result._tag === "Failed" ? result.error.reason : result._tag
}

describe("FrameDecoder", () => {
  it("decodes a frame delivered one byte at a time, then the next one from the same chunk", () => {
    const decoder = new FrameDecoder()
    const waiting = Frame.encodeFrame(Frame.waiting(sessionId, 20000))
    for (const byte of waiting.subarray(0, waiting.length - 1)) {
      decoder.push(bytes(byte))
      expect(decoder.next()._tag).toBe("NeedMore")
    }
    const ready = Frame.encodeFrame(Frame.ready)
    decoder.push(Buffer.concat([waiting.subarray(waiting.length - 1), ready, bytes(0x16, 0x03)]))
    expect(decoder.next()).toMatchObject({ _tag: "Frame", frame: { _tag: "Waiting", pingIntervalMs: 20000 } })
    expect(decoder.next()).toEqual({ _tag: "Frame", frame: { _tag: "Ready" } })
    // After READY the bytes belong to the inner TLS session: they are handed over, never decoded.
    expect([...decoder.remaining()]).toEqual([0x16, 0x03])
    expect([...decoder.takeRemaining()]).toEqual([0x16, 0x03])
    expect(decoder.bufferedLength).toBe(0)
  })

  it("fails with frame_too_large from the header alone", () => {
    const decoder = new FrameDecoder()
    decoder.push(bytes(0x02, 0x00, 0x00, 0x40, 0x01))
    expect(failureOf(decoder)).toBe("frame_too_large")
    // The failure is sticky: the connection is to be closed.
    decoder.push(Frame.encodeFrame(Frame.ready))
    expect(failureOf(decoder)).toBe("frame_too_large")
    expect(decoder.bufferedLength).toBe(5)
  })

  it("fails with frame_too_large as soon as a partial length is over the limit", () => {
    const decoder = new FrameDecoder()
    decoder.push(bytes(0x99, 0x00, 0x00))
    expect(decoder.next()._tag).toBe("NeedMore")
    decoder.push(bytes(0x41))
    expect(failureOf(decoder)).toBe("frame_too_large")
  })

  it("accepts a payload of exactly 16384 bytes up to its type check", () => {
    const decoder = new FrameDecoder()
    decoder.push(bytes(0x02, 0x00, 0x00, 0x40, 0x00))
    expect(decoder.next()._tag).toBe("NeedMore")
  })

  it("fails with bad_frame on an unknown type once the length is known to fit", () => {
    const decoder = new FrameDecoder()
    decoder.push(bytes(0x08, 0x00, 0x00))
    expect(decoder.next()._tag).toBe("NeedMore")
    decoder.push(bytes(0x00, 0x00))
    const result = decoder.next()
    expect(result._tag === "Failed" && result.error.code).toBe(ErrorCode.bad_frame)
  })

  it("fails with bad_frame on a payload of the wrong size", () => {
    const decoder = new FrameDecoder()
    decoder.push(bytes(0x05, 0x00, 0x00, 0x00, 0x01, 0x00))
    expect(failureOf(decoder)).toBe("bad_frame")
  })

  it("tells unsupported_version from bad_frame in HELLO and CHALLENGE", () => {
    const hello = Frame.encodeFrame({
      _tag: "Hello",
      version: 1,
      role: Frame.Role.broker,
      infoHash: new Uint8Array(32),
      maxWaitMs: 0,
      caDer: bytes(1),
      leafDer: bytes(2),
      signature: bytes(3)
    })
    const decode = (patch: (frame: Uint8Array) => void): string => {
      const copy = Uint8Array.from(hello)
      patch(copy)
      const decoder = new FrameDecoder()
      decoder.push(copy)
      return failureOf(decoder)
    }
    expect(decode(() => {})).toBe("Frame")
    expect(decode((frame) => frame[5] = 2)).toBe("unsupported_version")
    expect(decode((frame) => frame[6] = 3)).toBe("bad_frame")
    expect(decode((frame) => frame[6] = 0)).toBe("bad_frame")
    // The traceparent length claims a byte the payload does not have.
    expect(decode((frame) => frame[frame.length - 1] = 1)).toBe("bad_frame")
    const challenge = Uint8Array.from(Frame.encodeFrame(Frame.challenge(new Uint8Array(32))))
    challenge[5] = 2
    const decoder = new FrameDecoder()
    decoder.push(challenge)
    expect(failureOf(decoder)).toBe("unsupported_version")
  })

  it("rejects HELLO fields that do not fill the payload exactly", () => {
    const payload = Hello.encodeHello({
      version: 1,
      role: Frame.Role.bridge,
      infoHash: new Uint8Array(32),
      maxWaitMs: Hello.MAX_WAIT_UNBOUNDED,
      caDer: bytes(1),
      leafDer: bytes(2),
      signature: bytes(3),
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    })
    if (Either.isLeft(payload)) throw payload.left
    expect(Either.isRight(Hello.decodeHello(payload.right))).toBe(true)
    const longer = Buffer.concat([payload.right, bytes(0x41)])
    expect(Hello.decodeHello(longer)).toMatchObject({ _tag: "Left", left: { reason: "bad_frame" } })
    const shorter = payload.right.subarray(0, payload.right.length - 1)
    expect(Hello.decodeHello(shorter)).toMatchObject({ _tag: "Left", left: { reason: "bad_frame" } })
  })
})

describe("encodeFrame", () => {
  it("cuts an ERROR reason to 256 bytes on a character boundary", () => {
    const reason = "a" + "€".repeat(100)
    const encoded = Frame.encodeFrame(Frame.error(ErrorCode.internal, reason))
    const decoder = new FrameDecoder()
    decoder.push(encoded)
    const result = decoder.next()
    expect(result._tag).toBe("Frame")
    if (result._tag !== "Frame" || result.frame._tag !== "Error") return
    expect(Buffer.byteLength(result.frame.reason)).toBe(256)
    expect(result.frame.reason).toBe("a" + "€".repeat(85))
  })

  it("refuses fields that do not fit the wire format", () => {
    expect(() => Frame.encodeFrame(Frame.paired(new Uint8Array(15)))).toThrow(/16 bytes/)
    const tooBig = Frame.encodeFrameEither({
      _tag: "Hello",
      version: 1,
      role: Frame.Role.bridge,
      infoHash: new Uint8Array(32),
      maxWaitMs: 0,
      caDer: new Uint8Array(9000),
      leafDer: new Uint8Array(9000),
      signature: new Uint8Array(64)
    })
    expect(tooBig).toMatchObject({ _tag: "Left", left: { reason: "payload_too_large" } })
  })
})

describe("ErrorCode", () => {
  it("maps numbers to names and back", () => {
    expect(ErrorCode.bad_frame).toBe(1)
    expect(ErrorCode.internal).toBe(11)
    expect(errorCodeName(10)).toBe("frame_too_large")
    expect(errorCodeName(12)).toBeUndefined()
    expect(errorCodeName(0)).toBeUndefined()
  })
})
