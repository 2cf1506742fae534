/**
 * PEM text for certificates and PKCS#8 private keys: the form in which CloudTaser stores and exchanges them.
 */
import { Either, Schema } from "effect"

/** The PEM labels this package reads and writes. */
export type PemLabel = "CERTIFICATE" | "PRIVATE KEY"

/** PEM text that does not hold what the caller asked for. */
export class PemError extends Schema.TaggedError<PemError>()("PemError", {
  reason: Schema.Literal("no_block", "unterminated", "bad_base64", "empty"),
  label: Schema.String
}) {
  override get message(): string {
    const what = this.label === "PRIVATE KEY" ? "an unencrypted PKCS#8 private key" : "a certificate"
    switch (this.reason) {
      case "no_block":
        return `no "-----BEGIN ${this.label}-----" block found: give a PEM file that holds ${what}` +
          (this.label === "PRIVATE KEY" ? " (convert others with `openssl pkcs8 -topk8 -nocrypt`)" : "")
      case "unterminated":
        return `the "${this.label}" PEM block has no END line: the file looks truncated, copy it again`
      case "bad_base64":
        return `the "${this.label}" PEM block is not valid base64: the file looks damaged, copy it again`
      case "empty":
        return `the "${this.label}" PEM block is empty: give a PEM file that holds ${what}`
    }
  }
}

const base64Body = /^[A-Za-z0-9+/]*={0,2}$/

/** Wraps DER bytes in a PEM block with 64-character lines. */
export const encodePem = (label: PemLabel, der: Uint8Array): string => {
  const body = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64")
  const lines: Array<string> = []
  for (let i = 0; i < body.length; i += 64) lines.push(body.slice(i, i + 64))
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

/** Reads every PEM block with the given label, in order; text between blocks (comments, other labels) is skipped. */
export const decodePemAll = (text: string, label: PemLabel): Either.Either<ReadonlyArray<Uint8Array>, PemError> => {
  const begin = `-----BEGIN ${label}-----`
  const end = `-----END ${label}-----`
  const blocks: Array<Uint8Array> = []
  let from = text.indexOf(begin)
  if (from < 0) return Either.left(new PemError({ reason: "no_block", label }))
  while (from >= 0) {
    const bodyStart = from + begin.length
    const to = text.indexOf(end, bodyStart)
    if (to < 0) return Either.left(new PemError({ reason: "unterminated", label }))
    const body = text.slice(bodyStart, to).replace(/\s+/g, "")
    if (body.length === 0) return Either.left(new PemError({ reason: "empty", label }))
    if (body.length % 4 !== 0 || !base64Body.test(body)) {
      return Either.left(new PemError({ reason: "bad_base64", label }))
    }
    blocks.push(new Uint8Array(Buffer.from(body, "base64")))
    from = text.indexOf(begin, to + end.length)
  }
  return Either.right(blocks)
}

/** Reads the first PEM block with the given label. */
export const decodePem = (text: string, label: PemLabel): Either.Either<Uint8Array, PemError> =>
  Either.map(decodePemAll(text, label), (blocks) => blocks[0]!)

/** PEM text of a certificate from its DER bytes. */
export const certificateToPem = (der: Uint8Array): string => encodePem("CERTIFICATE", der)

/** DER bytes of the first certificate in PEM text. */
export const certificateFromPem = (pem: string): Either.Either<Uint8Array, PemError> => decodePem(pem, "CERTIFICATE")

/** DER bytes of every certificate in a PEM bundle, in order. */
export const certificatesFromPem = (pem: string): Either.Either<ReadonlyArray<Uint8Array>, PemError> =>
  decodePemAll(pem, "CERTIFICATE")

/** PEM text of an unencrypted PKCS#8 private key from its DER bytes. */
export const privateKeyToPem = (pkcs8Der: Uint8Array): string => encodePem("PRIVATE KEY", pkcs8Der)

/** PKCS#8 DER bytes of the first unencrypted private key in PEM text. */
export const privateKeyFromPem = (pem: string): Either.Either<Uint8Array, PemError> => decodePem(pem, "PRIVATE KEY")
