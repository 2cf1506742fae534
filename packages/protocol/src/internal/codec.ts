/** Byte-level reading and writing of version 1 frames and payloads, shared by the encoder and the decoder. */
import { Either } from "effect"
import type { Frame, Role } from "../Frame.ts"
import { FrameDecodeError, FrameEncodeError } from "../FrameError.ts"
import type { HelloPayload } from "../Hello.ts"
import {
  HEADER_SIZE,
  INFO_HASH_SIZE,
  MAX_PAYLOAD,
  MAX_REASON_BYTES,
  NONCE_SIZE,
  PING_DATA_SIZE,
  PROOF_CONTEXT,
  SESSION_ID_SIZE
} from "./wire.ts"

export const TYPE_CHALLENGE = 0x01
export const TYPE_HELLO = 0x02
export const TYPE_WAITING = 0x03
export const TYPE_PAIRED = 0x04
export const TYPE_READY = 0x05
export const TYPE_PING = 0x06
export const TYPE_PONG = 0x07
export const TYPE_ERROR = 0x0f

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

// ---- encoding --------------------------------------------------------------------------------------------------

const encodeFailure = (reason: FrameEncodeError["reason"], message: string): never => {
  throw new FrameEncodeError({ reason, message })
}

const checkSize = (field: string, bytes: Uint8Array, size: number): void => {
  if (bytes.length !== size) encodeFailure("field_size", `${field} must be ${size} bytes, not ${bytes.length}`)
}

const checkUint = (field: string, value: number, max: number): void => {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    encodeFailure("field_size", `${field} must be an integer from 0 to ${max}`)
  }
}

const checkLength = (field: string, length: number, max: number): void => {
  if (length > max) encodeFailure("field_size", `${field} is ${length} bytes; its length field holds at most ${max}`)
}

const checkPayload = (frame: string, length: number): void => {
  if (length > MAX_PAYLOAD) {
    encodeFailure("payload_too_large", `${frame} payload is ${length} bytes; a frame holds at most ${MAX_PAYLOAD}`)
  }
}

const isPrintableAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return false
  }
  return true
}

const frameBuffer = (type: number, length: number): Buffer => {
  const out = Buffer.allocUnsafe(HEADER_SIZE + length)
  out[0] = type
  out.writeUInt32BE(length, 1)
  return out
}

const helloPayloadLength = (hello: HelloPayload): number => {
  checkUint("HELLO version", hello.version, 0xff)
  checkUint("HELLO role", hello.role, 0xff)
  checkSize("HELLO info hash", hello.infoHash, INFO_HASH_SIZE)
  checkUint("HELLO max wait", hello.maxWaitMs, 0xffff_ffff)
  checkLength("HELLO CA certificate", hello.caDer.length, 0xffff)
  checkLength("HELLO leaf certificate", hello.leafDer.length, 0xffff)
  checkLength("HELLO signature", hello.signature.length, 0xffff)
  const traceparent = hello.traceparent ?? ""
  if (!isPrintableAscii(traceparent)) encodeFailure("field_size", "HELLO traceparent must be printable ASCII")
  checkLength("HELLO traceparent", traceparent.length, 0xff)
  const length = 1 + 1 + INFO_HASH_SIZE + 4 + 2 + hello.caDer.length + 2 + hello.leafDer.length + 2 +
    hello.signature.length + 1 + traceparent.length
  checkPayload("HELLO", length)
  return length
}

const writeHello = (hello: HelloPayload, out: Buffer, offset: number): void => {
  let at = offset
  out[at++] = hello.version
  out[at++] = hello.role
  out.set(hello.infoHash, at)
  at += INFO_HASH_SIZE
  out.writeUInt32BE(hello.maxWaitMs, at)
  at += 4
  for (const bytes of [hello.caDer, hello.leafDer, hello.signature]) {
    out.writeUInt16BE(bytes.length, at)
    out.set(bytes, at + 2)
    at += 2 + bytes.length
  }
  const traceparent = hello.traceparent ?? ""
  out[at++] = traceparent.length
  out.write(traceparent, at, "latin1")
}

/** The UTF-8 of an ERROR reason, cut to at most 256 bytes without splitting a character. */
const reasonBytes = (reason: string): Buffer => {
  const bytes = Buffer.from(reason, "utf8")
  if (bytes.length <= MAX_REASON_BYTES) return bytes
  let cut = MAX_REASON_BYTES
  // Back up over continuation bytes (10xxxxxx) so the cut lands on the first byte of a character.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--
  return bytes.subarray(0, cut)
}

/** Encodes a frame with its header; throws `FrameEncodeError` when a field does not fit. */
export const encodeFrame = (frame: Frame): Buffer => {
  switch (frame._tag) {
    case "Challenge": {
      checkUint("CHALLENGE version", frame.version, 0xff)
      checkSize("CHALLENGE nonce", frame.nonce, NONCE_SIZE)
      const out = frameBuffer(TYPE_CHALLENGE, 1 + NONCE_SIZE)
      out[HEADER_SIZE] = frame.version
      out.set(frame.nonce, HEADER_SIZE + 1)
      return out
    }
    case "Hello": {
      const out = frameBuffer(TYPE_HELLO, helloPayloadLength(frame))
      writeHello(frame, out, HEADER_SIZE)
      return out
    }
    case "Waiting": {
      checkSize("WAITING session id", frame.sessionId, SESSION_ID_SIZE)
      checkUint("WAITING ping interval", frame.pingIntervalMs, 0xffff_ffff)
      const out = frameBuffer(TYPE_WAITING, SESSION_ID_SIZE + 4)
      out.set(frame.sessionId, HEADER_SIZE)
      out.writeUInt32BE(frame.pingIntervalMs, HEADER_SIZE + SESSION_ID_SIZE)
      return out
    }
    case "Paired": {
      checkSize("PAIRED session id", frame.sessionId, SESSION_ID_SIZE)
      const out = frameBuffer(TYPE_PAIRED, SESSION_ID_SIZE)
      out.set(frame.sessionId, HEADER_SIZE)
      return out
    }
    case "Ready":
      return frameBuffer(TYPE_READY, 0)
    case "Ping":
    case "Pong": {
      checkSize(frame._tag === "Ping" ? "PING data" : "PONG data", frame.data, PING_DATA_SIZE)
      const out = frameBuffer(frame._tag === "Ping" ? TYPE_PING : TYPE_PONG, PING_DATA_SIZE)
      out.set(frame.data, HEADER_SIZE)
      return out
    }
    case "Error": {
      checkUint("ERROR code", frame.code, 0xffff)
      const reason = reasonBytes(frame.reason)
      const out = frameBuffer(TYPE_ERROR, 2 + reason.length)
      out.writeUInt16BE(frame.code, HEADER_SIZE)
      out.set(reason, HEADER_SIZE + 2)
      return out
    }
  }
}

const tryEncode = <A>(encode: () => A): Either.Either<A, FrameEncodeError> => {
  try {
    return Either.right(encode())
  } catch (error) {
    if (error instanceof FrameEncodeError) return Either.left(error)
    throw error
  }
}

export const encodeFrameEither = (frame: Frame): Either.Either<Uint8Array, FrameEncodeError> =>
  tryEncode(() => encodeFrame(frame))

export const encodeHelloPayload = (hello: HelloPayload): Either.Either<Uint8Array, FrameEncodeError> =>
  tryEncode(() => {
    const out = Buffer.allocUnsafe(helloPayloadLength(hello))
    writeHello(hello, out, 0)
    return out
  })

export const proofInput = (nonce: Uint8Array, role: Role, infoHash: Uint8Array): Uint8Array => {
  const out = Buffer.allocUnsafe(PROOF_CONTEXT.length + 1 + nonce.length + 1 + infoHash.length)
  let at = out.write(PROOF_CONTEXT, 0, "latin1")
  out[at++] = 0
  out.set(nonce, at)
  at += nonce.length
  out[at++] = role
  out.set(infoHash, at)
  return out
}

// ---- decoding --------------------------------------------------------------------------------------------------

const badFrame = (message: string): FrameDecodeError => new FrameDecodeError({ reason: "bad_frame", message })

/** Copies bytes out of the read buffer, so that a decoded frame never aliases bytes the decoder will reuse. */
const copy = (buf: Buffer, start: number, length: number): Buffer => {
  const out = Buffer.allocUnsafe(length)
  buf.copy(out, 0, start, start + length)
  return out
}

const exactLength = (name: string, length: number, expected: number): FrameDecodeError | undefined =>
  length === expected ? undefined : badFrame(`${name} payload must be ${expected} bytes, not ${length}`)

/** Reads a HELLO payload of `length` bytes at `start`. */
export const readHello = (buf: Buffer, start: number, length: number): HelloPayload | FrameDecodeError => {
  if (length < 1) return badFrame("HELLO payload is empty")
  const version = buf[start]!
  if (version !== 1) {
    return new FrameDecodeError({
      reason: "unsupported_version",
      message: `HELLO is protocol version ${version}; this beacon speaks version 1`
    })
  }
  const end = start + length
  const fixedEnd = start + 1 + 1 + INFO_HASH_SIZE + 4
  if (fixedEnd > end) return badFrame("HELLO payload ends inside its fixed fields")
  const role = buf[start + 1]!
  if (role !== 1 && role !== 2) return badFrame(`HELLO role ${role} is neither 1 (bridge) nor 2 (broker)`)
  const infoHash = copy(buf, start + 2, INFO_HASH_SIZE)
  const maxWaitMs = buf.readUInt32BE(start + 2 + INFO_HASH_SIZE)
  let at = fixedEnd
  const blobs: Array<Buffer> = []
  for (const name of ["CA certificate", "leaf certificate", "signature"]) {
    if (at + 2 > end) return badFrame(`HELLO payload ends before the ${name} length`)
    const size = buf.readUInt16BE(at)
    at += 2
    if (at + size > end) return badFrame(`HELLO ${name} length runs past the end of the payload`)
    blobs.push(copy(buf, at, size))
    at += size
  }
  if (at + 1 > end) return badFrame("HELLO payload ends before the traceparent length")
  const traceparentLength = buf[at++]!
  if (at + traceparentLength !== end) {
    return badFrame("HELLO fields do not fill the payload exactly")
  }
  for (let i = at; i < end; i++) {
    const c = buf[i]!
    if (c < 0x20 || c > 0x7e) return badFrame("HELLO traceparent is not printable ASCII")
  }
  const hello: HelloPayload = {
    version,
    role,
    infoHash,
    maxWaitMs,
    caDer: blobs[0]!,
    leafDer: blobs[1]!,
    signature: blobs[2]!
  }
  return traceparentLength === 0 ? hello : { ...hello, traceparent: buf.toString("latin1", at, end) }
}

export const decodeHelloPayload = (payload: Uint8Array): Either.Either<HelloPayload, FrameDecodeError> => {
  const result = readHello(asBuffer(payload), 0, payload.length)
  return result instanceof FrameDecodeError ? Either.left(result) : Either.right(result)
}

/** Whether a type byte is a frame type of version 1. */
export const isKnownType = (type: number): boolean =>
  (type >= TYPE_CHALLENGE && type <= TYPE_PONG) || type === TYPE_ERROR

/** Decodes the payload of a frame whose header has been read and whose type is known. */
export const readPayload = (type: number, buf: Buffer, start: number, length: number): Frame | FrameDecodeError => {
  switch (type) {
    case TYPE_CHALLENGE: {
      if (length < 1) return badFrame("CHALLENGE payload is empty")
      const version = buf[start]!
      if (version !== 1) {
        return new FrameDecodeError({
          reason: "unsupported_version",
          message: `CHALLENGE is protocol version ${version}; this client speaks version 1`
        })
      }
      return exactLength("CHALLENGE", length, 1 + NONCE_SIZE) ??
        { _tag: "Challenge", version, nonce: copy(buf, start + 1, NONCE_SIZE) }
    }
    case TYPE_HELLO: {
      const hello = readHello(buf, start, length)
      return hello instanceof FrameDecodeError ? hello : { _tag: "Hello", ...hello }
    }
    case TYPE_WAITING:
      return exactLength("WAITING", length, SESSION_ID_SIZE + 4) ?? {
        _tag: "Waiting",
        sessionId: copy(buf, start, SESSION_ID_SIZE),
        pingIntervalMs: buf.readUInt32BE(start + SESSION_ID_SIZE)
      }
    case TYPE_PAIRED:
      return exactLength("PAIRED", length, SESSION_ID_SIZE) ??
        { _tag: "Paired", sessionId: copy(buf, start, SESSION_ID_SIZE) }
    case TYPE_READY:
      return exactLength("READY", length, 0) ?? { _tag: "Ready" }
    case TYPE_PING:
      return exactLength("PING", length, PING_DATA_SIZE) ?? { _tag: "Ping", data: copy(buf, start, PING_DATA_SIZE) }
    case TYPE_PONG:
      return exactLength("PONG", length, PING_DATA_SIZE) ?? { _tag: "Pong", data: copy(buf, start, PING_DATA_SIZE) }
    case TYPE_ERROR: {
      if (length < 2) return badFrame("ERROR payload is shorter than its code")
      if (length - 2 > MAX_REASON_BYTES) return badFrame(`ERROR reason is longer than ${MAX_REASON_BYTES} bytes`)
      return { _tag: "Error", code: buf.readUInt16BE(start), reason: buf.toString("utf8", start + 2, start + length) }
    }
    default:
      return badFrame(`frame type 0x${type.toString(16).padStart(2, "0")} is not a version 1 frame`)
  }
}
