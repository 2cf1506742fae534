/**
 * The info hash names one CloudTaser pairing: the SHA-256 of the bridge CA certificate's DER encoding.
 */
import { Either, Schema } from "effect"
import { createHash } from "node:crypto"

/** Length in bytes of an info hash. */
export const INFO_HASH_BYTES = 32

/** An info hash given as text that is not 64 lowercase hex characters. */
export class InfoHashError extends Schema.TaggedError<InfoHashError>()("InfoHashError", {
  reason: Schema.Literal("wrong_length", "not_lowercase_hex"),
  length: Schema.Number
}) {
  override get message(): string {
    const fix = "copy it again from the output of `cloudtaser target connect`"
    return this.reason === "wrong_length"
      ? `an info hash is 64 hex characters, this one has ${this.length}: ${fix}`
      : `an info hash is lowercase hex (0-9, a-f) only: ${fix}`
  }
}

/** The SHA-256 of the CA certificate DER: the 32-byte info hash. */
export const infoHash = (caDer: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(caDer).digest())

/** Lowercase hex of any bytes (an info hash gives 64 characters). */
export const toHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

const lowercaseHex = /^[0-9a-f]*$/

/** Parses an info hash from its 64 lowercase hex characters, the only text form the project accepts. */
export const fromHex = (hex: string): Either.Either<Uint8Array, InfoHashError> => {
  if (hex.length !== INFO_HASH_BYTES * 2) {
    return Either.left(new InfoHashError({ reason: "wrong_length", length: hex.length }))
  }
  if (!lowercaseHex.test(hex)) {
    return Either.left(new InfoHashError({ reason: "not_lowercase_hex", length: hex.length }))
  }
  return Either.right(new Uint8Array(Buffer.from(hex, "hex")))
}

/** The first 12 hex characters of an info hash: the only form of it that may appear in logs, spans and errors. */
export const shortInfoHash = (hashOrHex: Uint8Array | string): string =>
  (typeof hashOrHex === "string" ? hashOrHex : toHex(hashOrHex.subarray(0, 6))).slice(0, 12)
