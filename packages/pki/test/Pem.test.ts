import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { createPrivateKey, X509Certificate } from "node:crypto"
import {
  certificateFromPem,
  certificatesFromPem,
  certificateToPem,
  decodePem,
  privateKeyFromPem,
  privateKeyToPem
} from "../src/Pem.ts"
import { vectors } from "./support/Vectors.ts"

const reason = (result: Either.Either<unknown, { readonly reason: string }>) =>
  Either.match(result, { onLeft: (error) => error.reason, onRight: () => "ok" })

describe("Pem", () => {
  it("reads a certificate and writes it back byte for byte", () => {
    const der = Either.getOrThrow(certificateFromPem(vectors.ca_cert_pem))
    expect(new X509Certificate(der).subject).toBe("CN=vector ca")
    expect(certificateToPem(der)).toBe(vectors.ca_cert_pem)
  })

  it("reads a PKCS#8 private key and writes it back byte for byte", () => {
    const der = Either.getOrThrow(privateKeyFromPem(vectors.bridge_leaf_key_pem))
    expect(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }).asymmetricKeyType).toBe("ed25519")
    expect(privateKeyToPem(der)).toBe(vectors.bridge_leaf_key_pem)
  })

  it("writes 64-character lines", () => {
    const pem = certificateToPem(new Uint8Array(200).fill(7))
    const body = pem.split("\n").slice(1, -2)
    expect(body.slice(0, -1).every((line) => line.length === 64)).toBe(true)
    expect(body.at(-1)!.length).toBeLessThanOrEqual(64)
  })

  it("reads every certificate of a bundle in order, skipping other blocks and text around them", () => {
    const bundle = `subject=CN = vector ca\n${vectors.ca_cert_pem}\n${vectors.bridge_leaf_key_pem}\r\n` +
      vectors.bridge_leaf_cert_pem.replaceAll("\n", "\r\n")
    const certificates = Either.getOrThrow(certificatesFromPem(bundle))
    expect(certificates.map((der) => new X509Certificate(der).subject)).toEqual(["CN=vector ca", "CN=bridge"])
  })

  it("does not take an EC or encrypted private key for a PKCS#8 one", () => {
    expect(reason(privateKeyFromPem("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))).toBe(
      "no_block"
    )
    const encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
    expect(reason(privateKeyFromPem(encrypted))).toBe("no_block")
    expect(Either.getOrThrow(Either.flip(privateKeyFromPem(encrypted))).message).toContain("openssl pkcs8 -topk8")
  })

  it("names what is wrong with text that is no PEM, a truncated block, bad base64 and an empty block", () => {
    expect(reason(certificateFromPem(""))).toBe("no_block")
    expect(reason(certificateFromPem(vectors.bridge_leaf_key_pem))).toBe("no_block")
    expect(reason(certificateFromPem(vectors.ca_cert_pem.slice(0, 200)))).toBe("unterminated")
    expect(reason(certificateFromPem(vectors.ca_cert_pem.replace("MIIB", "MI*B")))).toBe("bad_base64")
    expect(reason(certificateFromPem(vectors.ca_cert_pem.replace("MIIB", "MIIBA")))).toBe("bad_base64")
    expect(reason(decodePem("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----", "CERTIFICATE"))).toBe("empty")
    expect(Either.getOrThrow(Either.flip(certificateFromPem("x"))).message).toContain("-----BEGIN CERTIFICATE-----")
  })
})
