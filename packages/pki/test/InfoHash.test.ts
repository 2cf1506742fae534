import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { fromHex, infoHash, shortInfoHash, toHex } from "../src/InfoHash.ts"
import { certificateFromPem } from "../src/Pem.ts"
import { vectors } from "./support/Vectors.ts"

describe("InfoHash", () => {
  it("is the SHA-256 of the CA certificate DER, as in the vectors", () => {
    const caDer = Either.getOrThrow(certificateFromPem(vectors.ca_cert_pem))
    const hash = infoHash(caDer)
    expect(hash.byteLength).toBe(32)
    expect(toHex(hash)).toBe(vectors.info_hash)
  })

  it("reads back its own hex", () => {
    const hash = Either.getOrThrow(fromHex(vectors.info_hash))
    expect(toHex(hash)).toBe(vectors.info_hash)
  })

  it("refuses hex of the wrong length, in upper case, or with other characters, and says why", () => {
    const wrong = (hex: string) => Either.getOrThrow(Either.flip(fromHex(hex)))
    expect(wrong(vectors.info_hash.slice(0, 63)).reason).toBe("wrong_length")
    expect(wrong(vectors.info_hash.slice(0, 63)).message).toContain("64 hex characters, this one has 63")
    expect(wrong(`${vectors.info_hash}0`).reason).toBe("wrong_length")
    expect(wrong("").reason).toBe("wrong_length")
    expect(wrong(vectors.info_hash.toUpperCase()).reason).toBe("not_lowercase_hex")
    expect(wrong(`${vectors.info_hash.slice(0, 63)}g`).reason).toBe("not_lowercase_hex")
    expect(wrong(` ${vectors.info_hash.slice(1)}`).message).toContain("lowercase hex")
  })

  it("shortens to the first 12 hex characters from bytes or hex", () => {
    expect(shortInfoHash(vectors.info_hash)).toBe("8810b1e08217")
    expect(shortInfoHash(Either.getOrThrow(fromHex(vectors.info_hash)))).toBe("8810b1e08217")
  })
})
