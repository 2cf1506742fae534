/** The sizes and fixed values of protocol version 1, in one place for the public modules and the codec. */

/** Most bytes a frame payload may hold. A longer length is `frame_too_large`, whatever the type. */
export const MAX_PAYLOAD = 16384

/** Size of the frame header: type (1) and payload length (4). */
export const HEADER_SIZE = 5

/** The protocol version that HELLO and CHALLENGE carry. */
export const VERSION = 1

/** Size of an info hash: SHA-256 over the bridge CA's DER. */
export const INFO_HASH_SIZE = 32

/** Size of the CHALLENGE nonce. */
export const NONCE_SIZE = 32

/** Size of the session id in WAITING and PAIRED. */
export const SESSION_ID_SIZE = 16

/** Size of the opaque PING data that a PONG echoes. */
export const PING_DATA_SIZE = 8

/** Most bytes of UTF-8 that an ERROR reason carries; longer reasons are cut on a character boundary. */
export const MAX_REASON_BYTES = 256

/** HELLO max wait meaning "as long as the beacon allows". */
export const MAX_WAIT_UNBOUNDED = 0xffff_ffff

/** The text that starts every proof input. */
export const PROOF_CONTEXT = "cloudtaser-beacon/1 hello"
