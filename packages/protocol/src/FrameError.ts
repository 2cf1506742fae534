/** The typed failures of encoding and decoding frames. */
import { Data } from "effect"
import { ErrorCode } from "./ErrorCode.ts"
import type { ErrorCodeValue } from "./ErrorCode.ts"

/**
 * Bytes from a peer that are not a valid version 1 frame. The `reason` is the error code to send back in an ERROR
 * frame before closing the connection; `message` says what was wrong and never quotes the peer's bytes.
 */
export class FrameDecodeError extends Data.TaggedError("FrameDecodeError")<{
  readonly reason: "bad_frame" | "unsupported_version" | "frame_too_large"
  readonly message: string
}> {
  /** The error code number to put in the ERROR frame. */
  get code(): ErrorCodeValue {
    return ErrorCode[this.reason]
  }
}

/**
 * A frame whose fields cannot be written in the version 1 format: a fixed-size field of the wrong size, a length
 * that does not fit its length field, or a payload over 16384 bytes.
 */
export class FrameEncodeError extends Data.TaggedError("FrameEncodeError")<{
  readonly reason: "field_size" | "payload_too_large"
  readonly message: string
}> {}
