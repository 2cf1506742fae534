import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { encodeFrame, MAX_PAYLOAD } from "../src/Frame.ts"
import type { Frame } from "../src/Frame.ts"
import { FrameDecoder } from "../src/FrameDecoder.ts"
import type { FrameDecodeError } from "../src/FrameError.ts"
import { decodeHello, encodeHello } from "../src/Hello.ts"
import * as Arb from "./arbitraries.ts"

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

/** A frame as plain data: byte fields as hex, no absent fields, so that `toEqual` compares what is on the wire. */
const plain = (frame: Frame): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(frame)) {
    if (value === undefined) continue
    out[key] = value instanceof Uint8Array ? hex(value) : value
  }
  return out
}

/** The ERROR reason a peer reads back: the longest run of whole characters that fits in 256 bytes of UTF-8. */
const cutReason = (reason: string): string => {
  let out = ""
  let size = 0
  for (const character of reason) {
    size += Buffer.byteLength(character)
    if (size > 256) break
    out += character
  }
  return out
}

const expected = (frame: Frame): Record<string, unknown> =>
  plain(frame._tag === "Error" ? { ...frame, reason: cutReason(frame.reason) } : frame)

interface Outcome {
  readonly frames: Array<Frame>
  readonly failure: FrameDecodeError | undefined
}

/**
 * Feeds `input` to a decoder in pieces and checks what must hold for any input: no exception, every frame lies
 * within the bytes pushed so far and re-encodes to exactly those bytes, the bytes left over are exactly the rest of
 * the input, a failure is typed and sticky, and a header with a length over the limit is `frame_too_large`.
 */
const decodeChecked = (input: Uint8Array, cuts: ReadonlyArray<number>): Outcome => {
  const bytes = Buffer.from(input)
  const decoder = new FrameDecoder()
  const frames: Array<Frame> = []
  let offset = 0
  let pushed = 0
  for (const piece of Arb.split(input, cuts)) {
    decoder.push(piece)
    pushed += piece.length
    for (;;) {
      const result = decoder.next()
      if (result._tag === "NeedMore") break
      if (result._tag === "Failed") {
        const error = result.error
        expect(["bad_frame", "unsupported_version", "frame_too_large"]).toContain(error.reason)
        expect(decoder.next()).toBe(result)
        const headerComplete = offset + 5 <= pushed
        const declared = headerComplete ? bytes.readUInt32BE(offset + 1) : undefined
        if (error.reason === "frame_too_large") {
          if (declared !== undefined) expect(declared).toBeGreaterThan(MAX_PAYLOAD)
        } else {
          expect(declared).toBeLessThanOrEqual(MAX_PAYLOAD)
        }
        return { frames, failure: error }
      }
      const size = 5 + bytes.readUInt32BE(offset + 1)
      expect(offset + size).toBeLessThanOrEqual(pushed)
      if (result.frame._tag !== "Error") {
        expect(hex(encodeFrame(result.frame))).toBe(hex(bytes.subarray(offset, offset + size)))
      } else {
        expect(Buffer.byteLength(result.frame.reason)).toBeLessThanOrEqual(3 * 256)
      }
      frames.push(result.frame)
      offset += size
    }
    if (offset + 5 <= pushed) expect(bytes.readUInt32BE(offset + 1)).toBeLessThanOrEqual(MAX_PAYLOAD)
  }
  expect(hex(decoder.remaining())).toBe(hex(bytes.subarray(offset)))
  return { frames, failure: undefined }
}

const cuts = fc.array(fc.nat(), { maxLength: 24 })

type Mutation =
  | { readonly _tag: "flip"; readonly at: number; readonly bit: number }
  | { readonly _tag: "truncate"; readonly to: number }
  | { readonly _tag: "length"; readonly at: number; readonly length: number }
  | { readonly _tag: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly _tag: "delete"; readonly at: number; readonly count: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ _tag: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ _tag: fc.constant("truncate" as const), to: fc.nat() }),
  fc.record({
    _tag: fc.constant("length" as const),
    at: fc.nat(),
    length: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 0xffff_ffff }))
  }),
  fc.record({
    _tag: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 })
  }),
  fc.record({ _tag: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) })
)

/** Applies a mutation; "length" rewrites the length field of the frame header found at or after `at`. */
const mutate = (input: Buffer, change: Mutation, headers: ReadonlyArray<number>): Buffer => {
  if (input.length === 0) return input
  const at = "at" in change ? change.at % input.length : 0
  switch (change._tag) {
    case "flip": {
      const out = Buffer.from(input)
      out[at] = out[at]! ^ (1 << change.bit)
      return out
    }
    case "truncate":
      return input.subarray(0, change.to % (input.length + 1))
    case "length": {
      const out = Buffer.from(input)
      const header = headers.find((start) => start >= at && start + 5 <= out.length) ?? headers[0]!
      if (header + 5 <= out.length) out.writeUInt32BE(change.length, header + 1)
      return out
    }
    case "insert":
      return Buffer.concat([input.subarray(0, at), change.bytes, input.subarray(at)])
    case "delete":
      return Buffer.concat([input.subarray(0, at), input.subarray(at + change.count)])
  }
}

describe("frame codec properties", () => {
  it.prop("every frame round-trips through the encoder and the decoder", [Arb.frame(7000)], ([frame]) => {
    const { failure, frames } = decodeChecked(encodeFrame(frame), [])
    expect(failure).toBeUndefined()
    expect(frames.map(plain)).toEqual([expected(frame)])
  })

  it.prop(
    "a stream of frames split at arbitrary points decodes to the same frames",
    [fc.array(Arb.frame(), { minLength: 1, maxLength: 8 }), cuts],
    ([frames, cutPoints]) => {
      const stream = Buffer.concat(frames.map(encodeFrame))
      const outcome = decodeChecked(stream, cutPoints)
      expect(outcome.failure).toBeUndefined()
      expect(outcome.frames.map(plain)).toEqual(frames.map(expected))
    }
  )

  it.prop(
    "random bytes decode to frames or a typed error, never past the input",
    [fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), Arb.plausibleFrame, Arb.frame(300).map(encodeFrame))), cuts],
    ([parts, cutPoints]) => {
      decodeChecked(Buffer.concat(parts), cutPoints)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "mutated frames (bit flips, truncation, length changes, inserted and deleted bytes) never break the decoder",
    [
      fc.array(Arb.frame(300), { minLength: 1, maxLength: 5 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      cuts
    ],
    ([frames, mutations, cutPoints]) => {
      const encoded = frames.map(encodeFrame)
      const headers: Array<number> = []
      let start = 0
      for (const bytes of encoded) {
        headers.push(start)
        start += bytes.length
      }
      const input = mutations.reduce<Buffer>(
        (bytes, change) => mutate(bytes, change, headers),
        Buffer.concat(encoded)
      )
      decodeChecked(input, cutPoints)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "a length over 16384 is frame_too_large before the payload arrives, whatever the type",
    [
      fc.array(Arb.frame(200), { maxLength: 3 }),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: MAX_PAYLOAD + 1, max: 0xffff_ffff }),
      fc.uint8Array({ maxLength: 100 }),
      cuts
    ],
    ([before, type, length, partialPayload, cutPoints]) => {
      const header = Buffer.alloc(5)
      header[0] = type
      header.writeUInt32BE(length, 1)
      const input = Buffer.concat([...before.map(encodeFrame), header, partialPayload])
      const outcome = decodeChecked(input, cutPoints)
      expect(outcome.frames.map(plain)).toEqual(before.map(expected))
      expect(outcome.failure?.reason).toBe("frame_too_large")
    }
  )

  it.prop("a HELLO payload round-trips on its own", [Arb.helloFrame(3000)], ([hello]) => {
    const { _tag, ...payload } = hello
    const encoded = encodeHello(payload)
    if (Either.isLeft(encoded)) throw encoded.left
    const decoded = decodeHello(encoded.right)
    if (Either.isLeft(decoded)) throw decoded.left
    expect(plain({ _tag, ...decoded.right })).toEqual(plain(hello))
  })

  it.prop(
    "any HELLO payload bytes decode to fields or a typed error",
    [fc.uint8Array({ maxLength: 400 })],
    ([bytes]) => {
      const payload = Uint8Array.from(bytes)
      // Most random payloads fail on the version byte; make the rest of the checks reachable.
      if (payload.length > 0 && payload[0]! % 4 !== 0) payload[0] = 1
      const decoded = decodeHello(payload)
      if (Either.isLeft(decoded)) {
        expect(decoded.left.reason).toBe(payload.length === 0 || payload[0] === 1 ? "bad_frame" : "unsupported_version")
      } else {
        const again = encodeHello(decoded.right)
        expect(Either.isRight(again) && hex(again.right)).toBe(hex(payload))
      }
    }
  )
})
