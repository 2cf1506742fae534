/** The frames of beacon protocol version 1 as a tagged union, and their encoding to bytes. */
import type { Either } from "effect"
import type { FrameEncodeError } from "./FrameError.ts"
import type {
  ChallengePayload,
  ErrorPayload,
  HelloPayload,
  PairedPayload,
  PingPayload,
  PongPayload,
  WaitingPayload
} from "./Hello.ts"
import * as codec from "./internal/codec.ts"

export { HEADER_SIZE, MAX_PAYLOAD } from "./internal/wire.ts"

/** The client roles as they appear on the wire. */
export const Role = {
  bridge: 1,
  broker: 2
} as const

/** A client role: 1 bridge, 2 broker. */
export type Role = (typeof Role)[keyof typeof Role]

/** The name of a role, for logs. */
export const roleName = (role: Role): "bridge" | "broker" => role === Role.bridge ? "bridge" : "broker"

/** The frame type byte of each frame, by its tag. */
export const FrameType = {
  Challenge: 0x01,
  Hello: 0x02,
  Waiting: 0x03,
  Paired: 0x04,
  Ready: 0x05,
  Ping: 0x06,
  Pong: 0x07,
  Error: 0x0f
} as const

/** Beacon → client: version and nonce. */
export interface ChallengeFrame extends ChallengePayload {
  readonly _tag: "Challenge"
}

/** Client → beacon: role, info hash, certificates and proof. */
export interface HelloFrame extends HelloPayload {
  readonly _tag: "Hello"
}

/** Beacon → client: queued, with the ping interval. */
export interface WaitingFrame extends WaitingPayload {
  readonly _tag: "Waiting"
}

/** Beacon → client: paired; from now on the beacon → client direction carries only the peer's bytes. */
export interface PairedFrame extends PairedPayload {
  readonly _tag: "Paired"
}

/** Client → beacon: from now on the client → beacon direction carries only bytes for the peer. */
export interface ReadyFrame {
  readonly _tag: "Ready"
}

/** Beacon → client keep-alive while waiting. */
export interface PingFrame extends PingPayload {
  readonly _tag: "Ping"
}

/** Client → beacon answer to a PING. */
export interface PongFrame extends PongPayload {
  readonly _tag: "Pong"
}

/** Beacon → client: an error code and reason; the beacon closes the connection after it. */
export interface ErrorFrame extends ErrorPayload {
  readonly _tag: "Error"
}

/** Any frame of version 1. */
export type Frame =
  | ChallengeFrame
  | HelloFrame
  | WaitingFrame
  | PairedFrame
  | ReadyFrame
  | PingFrame
  | PongFrame
  | ErrorFrame

/** The tag of a frame: `"Challenge"`, `"Hello"`, … */
export type FrameTag = Frame["_tag"]

/**
 * Encodes a frame, header included. Throws `FrameEncodeError` when a field does not fit the wire format (a nonce,
 * session id or ping data of the wrong size, an over-long certificate, a payload over `MAX_PAYLOAD`): a defect of
 * the caller. Use `encodeFrameEither` for frames built from outside input. An ERROR reason longer than 256 bytes
 * of UTF-8 is cut on a character boundary.
 */
export const encodeFrame = (frame: Frame): Uint8Array => codec.encodeFrame(frame)

/** Encodes a frame like `encodeFrame`, returning the failure instead of throwing it. */
export const encodeFrameEither = (frame: Frame): Either.Either<Uint8Array, FrameEncodeError> =>
  codec.encodeFrameEither(frame)

/** A CHALLENGE frame of version 1. */
export const challenge = (nonce: Uint8Array): ChallengeFrame => ({ _tag: "Challenge", version: 1, nonce })

/** A WAITING frame. */
export const waiting = (sessionId: Uint8Array, pingIntervalMs: number): WaitingFrame => ({
  _tag: "Waiting",
  sessionId,
  pingIntervalMs
})

/** A PAIRED frame. */
export const paired = (sessionId: Uint8Array): PairedFrame => ({ _tag: "Paired", sessionId })

/** The READY frame. */
export const ready: ReadyFrame = { _tag: "Ready" }

/** A PING frame. */
export const ping = (data: Uint8Array): PingFrame => ({ _tag: "Ping", data })

/** A PONG frame answering the PING that carried `data`. */
export const pong = (data: Uint8Array): PongFrame => ({ _tag: "Pong", data })

/** An ERROR frame. */
export const error = (code: number, reason: string): ErrorFrame => ({ _tag: "Error", code, reason })
