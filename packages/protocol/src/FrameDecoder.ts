/** A streaming decoder that turns the bytes of one connection, in chunks of any size, into frames one at a time. */
import type { Frame } from "./Frame.ts"
import { FrameDecodeError } from "./FrameError.ts"
import * as codec from "./internal/codec.ts"

const MAX_PAYLOAD = 16384
const HEADER_SIZE = 5
const EMPTY = Buffer.alloc(0)

/** A complete frame, taken off the buffer. */
export interface Decoded {
  readonly _tag: "Frame"
  readonly frame: Frame
}

/** Not enough bytes yet for the next frame; push more. */
export interface NeedMore {
  readonly _tag: "NeedMore"
}

/** The bytes are not a valid frame. The decoder stays failed: the connection is to be closed. */
export interface Failed {
  readonly _tag: "Failed"
  readonly error: FrameDecodeError
}

/** What `FrameDecoder.next` returns. */
export type DecodeResult = Decoded | NeedMore | Failed

const needMore: NeedMore = { _tag: "NeedMore" }

const tooLarge = (length: number): Failed => ({
  _tag: "Failed",
  error: new FrameDecodeError({
    reason: "frame_too_large",
    message: length > 0
      ? `frame payload length ${length} is over the limit of ${MAX_PAYLOAD} bytes`
      : `frame payload length is over the limit of ${MAX_PAYLOAD} bytes`
  })
})

/**
 * Decodes frames from a byte stream. `push` adds a chunk; `next` takes one frame off the front, reports that more
 * bytes are needed, or reports a typed failure. It never throws and never takes bytes beyond the frame it returns:
 * `remaining` and `takeRemaining` give the bytes after the last returned frame, which after PAIRED or READY belong
 * to the peer or to the inner TLS session rather than to the frame layer.
 *
 * A length over 16384 fails with `frame_too_large` as soon as the header shows it, before any payload arrives.
 * A pushed chunk is referenced, not copied, until its bytes are used up, so it must not be modified afterwards.
 */
export class FrameDecoder {
  private buf: Buffer = EMPTY
  private start = 0
  private end = 0
  // True when `buf` was allocated here and may be written; false while it is a caller's chunk.
  private owned = false
  private failure: Failed | undefined = undefined

  /** Bytes buffered after the last returned frame. */
  get bufferedLength(): number {
    return this.end - this.start
  }

  /** Whether the decoder has failed; it then returns the same failure forever. */
  get failed(): boolean {
    return this.failure !== undefined
  }

  /** Appends a chunk of received bytes. Once the decoder has failed, further chunks are ignored. */
  push(chunk: Uint8Array): void {
    const length = chunk.length
    if (length === 0 || this.failure !== undefined) return
    if (this.start === this.end) {
      this.buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, length)
      this.start = 0
      this.end = length
      this.owned = false
      return
    }
    const held = this.end - this.start
    if (this.owned && this.buf.length - this.end >= length) {
      this.buf.set(chunk, this.end)
      this.end += length
      return
    }
    if (this.owned && this.buf.length >= held + length) {
      this.buf.copyWithin(0, this.start, this.end)
    } else {
      // Grow geometrically so that a frame arriving a few bytes at a time costs amortised constant time per byte.
      const next = Buffer.allocUnsafe(Math.max(held + length, 2 * held, 256))
      this.buf.copy(next, 0, this.start, this.end)
      this.buf = next
      this.owned = true
    }
    this.start = 0
    this.end = held
    this.buf.set(chunk, this.end)
    this.end += length
  }

  /** Takes the next frame off the buffer, if it is complete. */
  next(): DecodeResult {
    if (this.failure !== undefined) return this.failure
    const available = this.end - this.start
    const buf = this.buf
    const at = this.start
    if (available < HEADER_SIZE) {
      // A partial length already over the limit fails now: the missing low bytes can only make it larger.
      let floor = 0
      for (let i = 1; i < HEADER_SIZE; i++) floor = floor * 256 + (i < available ? buf[at + i]! : 0)
      if (floor > MAX_PAYLOAD) return this.fail(tooLarge(0))
      return needMore
    }
    const length = buf.readUInt32BE(at + 1)
    if (length > MAX_PAYLOAD) return this.fail(tooLarge(length))
    const type = buf[at]!
    if (!codec.isKnownType(type)) {
      return this.fail({
        _tag: "Failed",
        error: new FrameDecodeError({
          reason: "bad_frame",
          message: `frame type 0x${type.toString(16).padStart(2, "0")} is not a version 1 frame`
        })
      })
    }
    if (available < HEADER_SIZE + length) return needMore
    const frame = codec.readPayload(type, buf, at + HEADER_SIZE, length)
    if (frame instanceof FrameDecodeError) return this.fail({ _tag: "Failed", error: frame })
    this.consume(HEADER_SIZE + length)
    return { _tag: "Frame", frame }
  }

  /**
   * The bytes buffered after the last returned frame, without copying. The view is valid until the next `push`.
   */
  remaining(): Uint8Array {
    return this.buf.subarray(this.start, this.end)
  }

  /**
   * Hands over the bytes buffered after the last returned frame and empties the decoder, which no longer writes
   * into them. Use it when the connection leaves the frame layer (after PAIRED or READY).
   */
  takeRemaining(): Uint8Array {
    const rest = this.buf.subarray(this.start, this.end)
    this.reset()
    return rest
  }

  private consume(count: number): void {
    this.start += count
    // Drop the buffer once it is used up, so an idle connection holds no memory.
    if (this.start === this.end) this.reset()
  }

  private reset(): void {
    this.buf = EMPTY
    this.start = 0
    this.end = 0
    this.owned = false
  }

  private fail(failure: Failed): Failed {
    this.failure = failure
    return failure
  }
}

/** A new, empty decoder. */
export const make = (): FrameDecoder => new FrameDecoder()
