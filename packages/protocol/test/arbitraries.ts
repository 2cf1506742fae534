// Generators of frames and byte streams shared by the property tests.
import { FastCheck as fc } from "effect"
import type { Frame, Role } from "../src/Frame.ts"

export const bytesOf = (size: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: size, maxLength: size })

export const role: fc.Arbitrary<Role> = fc.constantFrom(1, 2)

const printableAscii = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
  minLength: 1,
  maxLength: 255
})

const uint32 = fc.integer({ min: 0, max: 0xffff_ffff })

export const helloFrame = (maxDer: number) =>
  fc.record({
    _tag: fc.constant("Hello" as const),
    version: fc.constant(1),
    role,
    infoHash: bytesOf(32),
    maxWaitMs: uint32,
    caDer: fc.uint8Array({ maxLength: maxDer }),
    leafDer: fc.uint8Array({ maxLength: maxDer }),
    signature: fc.uint8Array({ maxLength: 150 }),
    traceparent: fc.option(printableAscii, { nil: undefined })
  })

/** Any frame that fits the wire format, HELLO certificates up to `maxDer` bytes each. */
export const frame = (maxDer = 1500): fc.Arbitrary<Frame> =>
  fc.oneof(
    fc.record({ _tag: fc.constant("Challenge" as const), version: fc.constant(1), nonce: bytesOf(32) }),
    helloFrame(maxDer),
    fc.record({ _tag: fc.constant("Waiting" as const), sessionId: bytesOf(16), pingIntervalMs: uint32 }),
    fc.record({ _tag: fc.constant("Paired" as const), sessionId: bytesOf(16) }),
    fc.constant({ _tag: "Ready" as const }),
    fc.record({ _tag: fc.constant("Ping" as const), data: bytesOf(8) }),
    fc.record({ _tag: fc.constant("Pong" as const), data: bytesOf(8) }),
    fc.record({
      _tag: fc.constant("Error" as const),
      code: fc.integer({ min: 0, max: 0xffff }),
      reason: fc.string({ unit: "binary", maxLength: 300 })
    })
  )

/** A frame header of a known type with a small length, then random bytes: plausible input that is often wrong. */
export const plausibleFrame: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom(1, 2, 3, 4, 5, 6, 7, 15), fc.uint8Array({ maxLength: 80 }), fc.integer({ min: -3, max: 3 }))
  .map(([type, payload, skew]) => {
    const out = Buffer.alloc(5 + payload.length)
    out[0] = type
    out.writeUInt32BE(Math.max(0, payload.length + skew), 1)
    out.set(payload, 5)
    return out
  })

/** Splits bytes at the given cut points (taken modulo the length). */
export const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const pieces: Array<Uint8Array> = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.subarray(from, point))
    from = point
  }
  return pieces
}
