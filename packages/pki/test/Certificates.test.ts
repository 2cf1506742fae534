import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { X509Certificate } from "node:crypto"
import { certificateValidity, fingerprint256, makeCa, makeLeaf, makeServerCertificate } from "../src/Certificates.ts"
import { infoHash, toHex } from "../src/InfoHash.ts"
import { openssl, opensslResult, tempDir } from "./support/Files.ts"

const day = 24 * 60 * 60 * 1000

/** The "Name : Yes/No" lines of `openssl x509 -purpose`, as a record. */
const purposes = (output: string): Record<string, string> =>
  Object.fromEntries(
    output.split("\n").flatMap((line) => {
      const match = /^(.+?) : (Yes|No)$/.exec(line.trim())
      return match ? [[match[1]!, match[2]!]] : []
    })
  )

describe("Certificates checked by openssl", () => {
  it.scoped("issues leaves that `openssl verify` accepts under the CA and refuses under another CA", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const other = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge", dnsNames: ["cloudtaser-bridge"] })
      const broker = yield* makeLeaf({ ca, role: "broker", commonName: "broker" })
      const caFile = files.write("ca.pem", ca.certPem)
      const otherFile = files.write("other.pem", other.certPem)
      const bridgeFile = files.write("bridge.pem", bridge.certPem)
      const brokerFile = files.write("broker.pem", broker.certPem)

      const verified = yield* openssl(["verify", "-CAfile", caFile, bridgeFile, brokerFile])
      expect(verified.stdout).toContain(`${bridgeFile}: OK`)
      expect(verified.stdout).toContain(`${brokerFile}: OK`)
      const refused = yield* opensslResult(["verify", "-CAfile", otherFile, bridgeFile])
      expect(refused.code).not.toBe(0)
    }))

  it.scoped("makes a bridge leaf an SSL server only and a broker leaf an SSL client only", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const broker = yield* makeLeaf({ ca, role: "broker", commonName: "broker" })
      const bridgePurposes = purposes(
        (yield* openssl(["x509", "-in", files.write("bridge.pem", bridge.certPem), "-noout", "-purpose"])).stdout
      )
      expect(bridgePurposes["SSL server"]).toBe("Yes")
      expect(bridgePurposes["SSL client"]).toBe("No")
      expect(bridgePurposes["SSL server CA"]).toBe("No")
      const brokerPurposes = purposes(
        (yield* openssl(["x509", "-in", files.write("broker.pem", broker.certPem), "-noout", "-purpose"])).stdout
      )
      expect(brokerPurposes["SSL client"]).toBe("Yes")
      expect(brokerPurposes["SSL server"]).toBe("No")
      expect(brokerPurposes["SSL client CA"]).toBe("No")
    }))

  it.scoped("makes a CA that openssl treats as one, with the extensions the protocol relies on", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const caFile = files.write("ca.pem", ca.certPem)
      const caPurposes = purposes((yield* openssl(["x509", "-in", caFile, "-noout", "-purpose"])).stdout)
      expect(caPurposes["SSL server CA"]).toBe("Yes")
      expect(caPurposes["SSL client CA"]).toBe("Yes")
      const text = (yield* openssl(["x509", "-in", caFile, "-noout", "-text"])).stdout
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/)
      expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/)
      expect(text).toContain("X509v3 Subject Key Identifier")
      expect(text).toContain("ASN1 OID: prime256v1")
      expect(text).toContain("Signature Algorithm: ecdsa-with-SHA256")
    }))

  it.scoped("hashes the CA DER to the same info hash as openssl and sha256 do", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const caFile = files.write("ca.pem", ca.certPem)
      yield* openssl(["x509", "-in", caFile, "-outform", "DER", "-out", files.path("ca.der")])
      const digest = (yield* openssl(["dgst", "-sha256", "-r", files.path("ca.der")])).stdout.split(" ")[0]
      expect(toHex(infoHash(ca.certDer))).toBe(digest)
    }))

  it.scoped("writes leaf names, key identifiers and a fresh 16-byte serial into each leaf", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const leafOptions = {
        ca,
        role: "bridge",
        commonName: "bridge",
        dnsNames: ["cloudtaser-bridge", "localhost"],
        ipAddresses: ["127.0.0.1", "::1", "2001:db8::5", "::ffff:10.0.0.1"]
      } as const
      const first = yield* makeLeaf(leafOptions)
      const second = yield* makeLeaf(leafOptions)
      const text = (yield* openssl(["x509", "-in", files.write("leaf.pem", first.certPem), "-noout", "-text"])).stdout
      expect(text).toContain(
        "DNS:cloudtaser-bridge, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, " +
          "IP Address:2001:DB8:0:0:0:0:0:5, IP Address:0:0:0:0:0:FFFF:A00:1"
      )
      expect(text).toContain("X509v3 Authority Key Identifier")
      const caText = (yield* openssl(["x509", "-in", files.write("ca.pem", ca.certPem), "-noout", "-text"])).stdout
      const caKeyId = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(caText)![1]!
      expect(/Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/.exec(text)![1]).toBe(caKeyId)
      const leaf = new X509Certificate(first.certDer)
      expect(leaf.serialNumber).toMatch(/^[0-9A-F]{32}$/)
      expect(leaf.serialNumber).not.toBe(new X509Certificate(second.certDer).serialNumber)
      expect(leaf.checkHost("cloudtaser-bridge")).toBe("cloudtaser-bridge")
      expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1")
    }))

  it.scoped("signs leaves with a P-384 CA using SHA-384", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({ commonName: "pairing ca", curve: "P-384" })
      const leaf = yield* makeLeaf({ ca, role: "broker", commonName: "broker" })
      const caFile = files.write("ca.pem", ca.certPem)
      const leafFile = files.write("leaf.pem", leaf.certPem)
      expect((yield* openssl(["verify", "-CAfile", caFile, leafFile])).stdout).toContain("OK")
      expect((yield* openssl(["x509", "-in", leafFile, "-noout", "-text"])).stdout).toContain(
        "Signature Algorithm: ecdsa-with-SHA384"
      )
    }))

  it.scoped("makes a self-signed server certificate, its own anchor for openssl, and its fingerprint", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const server = yield* makeServerCertificate({
        commonName: "localhost",
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"]
      })
      const serverFile = files.write("server.pem", server.certPem)
      yield* openssl(["verify", "-CAfile", serverFile, "-purpose", "sslserver", serverFile])
      expect(purposes((yield* openssl(["x509", "-in", serverFile, "-noout", "-purpose"])).stdout)["SSL server"]).toBe(
        "Yes"
      )
      const fingerprint = (yield* openssl(["x509", "-in", serverFile, "-noout", "-fingerprint", "-sha256"])).stdout
      expect(fingerprint.trim().split("=")[1]).toBe(server.fingerprint256)
      expect(server.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
      expect(fingerprint256(server.certDer)).toBe(server.fingerprint256)
      const key = (yield* openssl(["pkey", "-in", files.write("server.key", server.keyPem), "-noout", "-text"])).stdout
      expect(key).toContain("prime256v1")
    }))
})

describe("Certificates refuse bad options", () => {
  it.effect("refuses an empty common name, bad IP addresses and DNS names, and a validity that is not positive", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const reasons = yield* Effect.all([
        makeCa({ commonName: "" }),
        makeCa({ commonName: "pairing ca", validityDays: 0 }),
        makeLeaf({ ca, role: "bridge", commonName: "bridge", ipAddresses: ["localhost"] }),
        makeServerCertificate({ commonName: "x", ipAddresses: ["300.1.1.1"] }),
        makeServerCertificate({ commonName: "x", dnsNames: ["bad name"] }),
        makeLeaf({ ca, role: "server", commonName: "x", dnsNames: [""] })
      ].map((effect) => Effect.flip(effect)))
      expect(reasons.map((error) => error.reason)).toEqual([
        "invalid_options",
        "invalid_options",
        "invalid_options",
        "invalid_options",
        "invalid_options",
        "invalid_options"
      ])
      expect(reasons[2]!.message).toContain("\"localhost\" is not an IPv4 or IPv6 address")
      expect(reasons[4]!.message).toContain("\"bad name\" is not a DNS name")
    }))

  it.effect("refuses to sign with a leaf, with a CA whose key is another's, and with text that is no PEM", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const other = yield* makeCa({ commonName: "other ca" })
      const leaf = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const asCa = yield* Effect.flip(makeLeaf({ ca: leaf, role: "bridge", commonName: "x" }))
      expect(asCa.reason).toBe("ca_unusable")
      expect(asCa.message).toContain("not a CA")
      const mismatched = yield* Effect.flip(
        makeLeaf({ ca: { certPem: ca.certPem, keyPem: other.keyPem }, role: "bridge", commonName: "x" })
      )
      expect(mismatched.message).toContain("does not belong to the certificate")
      const noPem = yield* Effect.flip(
        makeLeaf({ ca: { certPem: "hello", keyPem: ca.keyPem }, role: "bridge", commonName: "x" })
      )
      expect(noPem.message).toContain("BEGIN CERTIFICATE")
    }))
})

describe("certificateValidity", () => {
  it.effect("says how many days remain, when a certificate expired, and when it becomes valid", () =>
    Effect.gen(function*() {
      const notBefore = new Date("2027-01-10T12:00:00Z")
      const ca = yield* makeCa({ commonName: "pairing ca", notBefore, validityDays: 30 })
      const during = Either.getOrThrow(certificateValidity(ca.certPem, new Date("2027-01-20T12:00:00Z")))
      expect(during.status).toBe("valid")
      expect(during.daysLeft).toBe(20)
      expect(during.summary).toBe("expires in 20 days (on 2027-02-09)")
      expect(during.notBefore.toISOString()).toBe("2027-01-10T12:00:00.000Z")
      const lastDay = Either.getOrThrow(certificateValidity(ca.certDer, new Date("2027-02-09T00:00:00Z")))
      expect(lastDay.summary).toBe("expires today (2027-02-09T12:00:00.000Z)")
      const after = Either.getOrThrow(certificateValidity(ca.certDer, new Date("2027-03-01T00:00:00Z")))
      expect(after.status).toBe("expired")
      expect(after.summary).toBe("expired on 2027-02-09")
      const before = Either.getOrThrow(certificateValidity(ca.certDer, new Date(notBefore.getTime() - day)))
      expect(before.status).toBe("not_yet_valid")
      expect(before.summary).toBe("not valid before 2027-01-10T12:00:00.000Z")
    }))

  it("refuses bytes and text that are no certificate", () => {
    expect(Either.getOrThrow(Either.flip(certificateValidity(new Uint8Array([1, 2, 3]), new Date()))).reason).toBe(
      "unparseable"
    )
    expect(Either.getOrThrow(Either.flip(certificateValidity("no pem here", new Date()))).message).toContain(
      "give a PEM or DER certificate file"
    )
  })

  it.scoped("uses GeneralizedTime for dates from 2050 on, which openssl and Node read back", () =>
    Effect.gen(function*() {
      const files = yield* tempDir
      const ca = yield* makeCa({
        commonName: "pairing ca",
        notBefore: new Date("2030-01-01T00:00:00Z"),
        validityDays: 36500
      })
      const validity = Either.getOrThrow(certificateValidity(ca.certPem, new Date("2040-01-01T00:00:00Z")))
      expect(validity.notAfter.toISOString()).toBe("2129-12-08T00:00:00.000Z")
      expect(validity.status).toBe("valid")
      const endDate = (yield* openssl(["x509", "-in", files.write("ca.pem", ca.certPem), "-noout", "-enddate"])).stdout
      expect(endDate.trim()).toBe("notAfter=Dec  8 00:00:00 2129 GMT")
    }))
})
