/** The payloads of the version 1 frames, above all HELLO with the proof input that its signature covers. */
import type { Either } from "effect"
import type { Role } from "./Frame.ts"
import type { FrameDecodeError, FrameEncodeError } from "./FrameError.ts"
import * as codec from "./internal/codec.ts"

export {
  INFO_HASH_SIZE,
  MAX_REASON_BYTES,
  MAX_WAIT_UNBOUNDED,
  NONCE_SIZE,
  PING_DATA_SIZE,
  PROOF_CONTEXT,
  SESSION_ID_SIZE,
  VERSION
} from "./internal/wire.ts"

/** CHALLENGE: the beacon's version and a fresh nonce for this connection. */
export interface ChallengePayload {
  readonly version: number
  readonly nonce: Uint8Array
}

/** HELLO: who the client is and the proof that it holds the leaf's private key. */
export interface HelloPayload {
  /** Always 1 once decoded; any other value is `unsupported_version`. */
  readonly version: number
  readonly role: Role
  /** SHA-256 over `caDer`, 32 bytes. */
  readonly infoHash: Uint8Array
  /** 0: pair only with a client already waiting; `MAX_WAIT_UNBOUNDED`: as long as the beacon allows. */
  readonly maxWaitMs: number
  readonly caDer: Uint8Array
  readonly leafDer: Uint8Array
  /** The leaf key's signature over `proofInput(nonce, role, infoHash)`. */
  readonly signature: Uint8Array
  /** A W3C traceparent in ASCII, absent when the client sends none. */
  readonly traceparent?: string | undefined
}

/** WAITING: the client is queued. */
export interface WaitingPayload {
  readonly sessionId: Uint8Array
  readonly pingIntervalMs: number
}

/** PAIRED: the session id that both paired clients receive. */
export interface PairedPayload {
  readonly sessionId: Uint8Array
}

/** PING and PONG: 8 opaque bytes, echoed by the PONG. */
export interface PingPayload {
  readonly data: Uint8Array
}

/** PONG carries the data of the PING it answers. */
export type PongPayload = PingPayload

/** ERROR: an error code number and a short UTF-8 reason. */
export interface ErrorPayload {
  /** A number of `ErrorCode`; kept as a number so that an unknown code from a newer peer still decodes. */
  readonly code: number
  readonly reason: string
}

/**
 * The bytes that a HELLO signature covers:
 * `"cloudtaser-beacon/1 hello" || 0x00 || nonce || role || info hash`.
 */
export const proofInput = (nonce: Uint8Array, role: Role, infoHash: Uint8Array): Uint8Array =>
  codec.proofInput(nonce, role, infoHash)

/** Encodes a HELLO payload (without the frame header); fails when a field does not fit its length field. */
export const encodeHello = (hello: HelloPayload): Either.Either<Uint8Array, FrameEncodeError> =>
  codec.encodeHelloPayload(hello)

/**
 * Decodes a HELLO payload (without the frame header). A version other than 1 is `unsupported_version`; fields
 * that do not fill the payload exactly, a role other than 1 or 2, or a traceparent that is not printable ASCII is
 * `bad_frame`.
 */
export const decodeHello = (payload: Uint8Array): Either.Either<HelloPayload, FrameDecodeError> =>
  codec.decodeHelloPayload(payload)
