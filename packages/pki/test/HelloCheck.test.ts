import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { createPrivateKey, generateKeyPairSync } from "node:crypto"
import type { Credentials } from "../src/Certificates.ts"
import { makeCa, makeLeaf } from "../src/Certificates.ts"
import type { CertInvalidReason, HelloInput } from "../src/HelloCheck.ts"
import {
  checkHello,
  CLOCK_SKEW_MS,
  HelloRejected,
  makeHelloChecker,
  readProofKey,
  signProof,
  verifyProof
} from "../src/HelloCheck.ts"
import { fromHex, infoHash, toHex } from "../src/InfoHash.ts"
import { certificateFromPem } from "../src/Pem.ts"
import { openssl, tempDir } from "./support/Files.ts"
import { readHello, vectors } from "./support/Vectors.ts"

const minute = 60 * 1000
const day = 24 * 60 * minute
const vectorNow = new Date("2027-06-01T00:00:00Z")
const vectorCa = Either.getOrThrow(certificateFromPem(vectors.ca_cert_pem))
const vectorLeaf = Either.getOrThrow(certificateFromPem(vectors.bridge_leaf_cert_pem))
const vectorHello = readHello(vectors.frames.hello)
const proofInput = new Uint8Array(Buffer.from(vectors.frames.proof_input, "hex"))

const rejection = (result: Either.Either<unknown, HelloRejected>) =>
  Either.match(result, {
    onLeft: (error) => `${error.code}:${error.reason}`,
    onRight: () => "accepted"
  })

const helloFor = (ca: Credentials, leafDer: Uint8Array, role: 1 | 2, now: Date): HelloInput => ({
  role,
  infoHash: infoHash(ca.certDer),
  caDer: ca.certDer,
  leafDer,
  now
})

/** Issues a leaf from the CA with the machine's openssl, for keys and extensions this package never makes. */
const opensslLeaf = (ca: Credentials, options: { readonly key: ReadonlyArray<string>; readonly extensions: string }) =>
  Effect.gen(function*() {
    const files = yield* tempDir
    const caCert = files.write("ca.pem", ca.certPem)
    const caKey = files.write("ca.key", ca.keyPem)
    const ext = files.write("ext.cnf", `[leaf]\n${options.extensions}\n`)
    yield* openssl([
      "req",
      "-new",
      "-newkey",
      ...options.key,
      "-nodes",
      "-keyout",
      files.path("leaf.key"),
      "-out",
      files.path("leaf.csr"),
      "-subj",
      "/CN=openssl leaf"
    ])
    yield* openssl([
      "x509",
      "-req",
      "-in",
      files.path("leaf.csr"),
      "-CA",
      caCert,
      "-CAkey",
      caKey,
      "-set_serial",
      "7",
      "-days",
      "30",
      "-extfile",
      ext,
      "-extensions",
      "leaf",
      "-outform",
      "DER",
      "-out",
      files.path("leaf.der")
    ])
    return new Uint8Array(files.read("leaf.der"))
  }).pipe(Effect.scoped, Effect.orDie)

const p256 = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]

const leafExtensions = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
  "authorityKeyIdentifier=keyid"

describe("HelloCheck with the protocol vectors", () => {
  it("accepts the vector bridge leaf for role bridge and returns its Ed25519 key", () => {
    expect(toHex(infoHash(vectorCa))).toBe(vectors.info_hash)
    const result = checkHello({
      role: 1,
      infoHash: Either.getOrThrow(fromHex(vectors.info_hash)),
      caDer: vectorCa,
      leafDer: vectorLeaf,
      now: vectorNow
    })
    expect(Either.getOrThrow(result).algorithm).toBe("ed25519")
  })

  it("refuses the vector bridge leaf for role broker: its extended key usage has no clientAuth", () => {
    const result = checkHello({
      role: 2,
      infoHash: infoHash(vectorCa),
      caDer: vectorCa,
      leafDer: vectorLeaf,
      now: vectorNow
    })
    expect(rejection(result)).toBe("cert_invalid:missing_purpose")
  })

  it("carries the same certificates and hash in the vector HELLO as in the PEM files", () => {
    expect(vectorHello.role).toBe(1)
    expect(toHex(vectorHello.infoHash)).toBe(vectors.info_hash)
    expect(toHex(vectorHello.caDer)).toBe(toHex(vectorCa))
    expect(toHex(vectorHello.leafDer)).toBe(toHex(vectorLeaf))
  })

  it("signs the vector proof input into the signature of the vector HELLO", () => {
    const signature = signProof(vectors.bridge_leaf_key_pem, proofInput)
    expect(toHex(signature)).toBe(toHex(vectorHello.signature))
  })

  it("verifies the vector signature and refuses it with any bit flipped or over another input", () => {
    const leaf = Either.getOrThrow(
      checkHello({ role: 1, infoHash: vectorHello.infoHash, caDer: vectorCa, leafDer: vectorLeaf, now: vectorNow })
    )
    expect(verifyProof(leaf, proofInput, vectorHello.signature)).toBe(true)
    for (const bit of [0, 100, 511]) {
      const flipped = new Uint8Array(vectorHello.signature)
      flipped[bit >> 3]! ^= 1 << (bit & 7)
      expect(verifyProof(leaf, proofInput, flipped)).toBe(false)
    }
    const otherInput = new Uint8Array(proofInput)
    otherInput[40]! ^= 1
    expect(verifyProof(leaf, otherInput, vectorHello.signature)).toBe(false)
    expect(verifyProof(leaf, proofInput, new Uint8Array(0))).toBe(false)
  })

  it("refuses the vector HELLO before its CA's notBefore less the clock skew, and accepts it within", () => {
    const notBefore = new Date("2026-12-03T14:05:28Z").getTime()
    const at = (ms: number) =>
      rejection(checkHello({
        role: 1,
        infoHash: vectorHello.infoHash,
        caDer: vectorCa,
        leafDer: vectorLeaf,
        now: new Date(ms)
      }))
    expect(at(notBefore - 4 * minute)).toBe("accepted")
    expect(at(notBefore - 6 * minute)).toBe("cert_invalid:ca_not_yet_valid")
  })
})

describe("HelloCheck with generated certificates", () => {
  it.effect("accepts a bridge leaf as bridge and a broker leaf as broker, and neither in the other role", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const broker = yield* makeLeaf({ ca, role: "broker", commonName: "broker" })
      const now = new Date()
      expect(Either.getOrThrow(checkHello(helloFor(ca, bridge.certDer, 1, now))).algorithm).toBe("ecdsa-p256-sha256")
      expect(rejection(checkHello(helloFor(ca, broker.certDer, 2, now)))).toBe("accepted")
      expect(rejection(checkHello(helloFor(ca, bridge.certDer, 2, now)))).toBe("cert_invalid:missing_purpose")
      expect(rejection(checkHello(helloFor(ca, broker.certDer, 1, now)))).toBe("cert_invalid:missing_purpose")
    }))

  it.effect("signs and verifies proofs with P-256 and P-384 leaf keys, as DER-encoded ECDSA signatures", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      for (const curve of ["P-256", "P-384"] as const) {
        const broker = yield* makeLeaf({ ca, role: "broker", commonName: "broker", curve })
        const leaf = Either.getOrThrow(checkHello(helloFor(ca, broker.certDer, 2, new Date())))
        expect(leaf.algorithm).toBe(curve === "P-256" ? "ecdsa-p256-sha256" : "ecdsa-p384-sha384")
        const signature = signProof(broker.keyPem, proofInput)
        expect(signature[0]).toBe(0x30)
        expect(verifyProof(leaf, proofInput, signature)).toBe(true)
        expect(verifyProof(leaf.publicKey, proofInput, signature)).toBe(true)
        const damaged = new Uint8Array(signature)
        damaged[damaged.length - 1]! ^= 0x01
        expect(verifyProof(leaf, proofInput, damaged)).toBe(false)
      }
    }))

  it.effect("refuses a CA that does not hash to the info hash", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const other = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const input = { ...helloFor(ca, bridge.certDer, 1, new Date()), infoHash: infoHash(other.certDer) }
      expect(rejection(checkHello(input))).toBe("hash_mismatch:hash_mismatch")
      expect(rejection(checkHello({ ...input, infoHash: new Uint8Array(31) }))).toBe("hash_mismatch:hash_mismatch")
    }))

  it.effect("refuses a leaf sent as the CA", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const input = helloFor(bridge, bridge.certDer, 1, new Date())
      expect(rejection(checkHello(input))).toBe("cert_invalid:not_a_ca")
    }))

  it.effect("refuses a leaf issued by another CA of the same name", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const other = yield* makeCa({ commonName: "pairing ca" })
      const stranger = yield* makeLeaf({ ca: other, role: "bridge", commonName: "bridge" })
      expect(rejection(checkHello(helloFor(ca, stranger.certDer, 1, new Date())))).toBe(
        "cert_invalid:not_issued_by_ca"
      )
    }))

  it.effect("refuses a leaf whose signature was altered", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const altered = new Uint8Array(bridge.certDer)
      altered[altered.length - 1]! ^= 0x01
      expect(rejection(checkHello(helloFor(ca, altered, 1, new Date())))).toBe("cert_invalid:bad_signature")
    }))

  it.effect("refuses an expired leaf and a leaf not yet valid beyond five minutes of skew, and accepts within", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca", notBefore: new Date(Date.now() - 30 * day) })
      const notBefore = new Date(Date.now() - 10 * day)
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge", notBefore, validityDays: 2 })
      const notAfter = notBefore.getTime() + 2 * day
      const at = (ms: number) => rejection(checkHello(helloFor(ca, bridge.certDer, 1, new Date(ms))))
      expect(at(Date.now())).toBe("cert_invalid:leaf_expired")
      expect(at(notAfter + CLOCK_SKEW_MS + minute)).toBe("cert_invalid:leaf_expired")
      expect(at(notAfter + CLOCK_SKEW_MS - minute)).toBe("accepted")
      expect(at(notBefore.getTime() - CLOCK_SKEW_MS + minute)).toBe("accepted")
      expect(at(notBefore.getTime() - CLOCK_SKEW_MS - minute)).toBe("cert_invalid:leaf_not_yet_valid")

      expect(at(Number.NaN)).toBe("cert_invalid:ca_not_yet_valid")

      const future = yield* makeLeaf({
        ca,
        role: "bridge",
        commonName: "bridge",
        notBefore: new Date(Date.now() + 10 * minute)
      })
      expect(rejection(checkHello(helloFor(ca, future.certDer, 1, new Date())))).toBe(
        "cert_invalid:leaf_not_yet_valid"
      )
    }))

  it.effect("refuses an expired CA", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({
        commonName: "pairing ca",
        notBefore: new Date(Date.now() - 30 * day),
        validityDays: 1
      })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      expect(rejection(checkHello(helloFor(ca, bridge.certDer, 1, new Date())))).toBe("cert_invalid:ca_expired")
    }))

  it.effect("refuses a leaf without extended key usage and one with only anyExtendedKeyUsage", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const now = new Date()
      const none = yield* opensslLeaf(ca, { key: p256, extensions: leafExtensions })
      expect(rejection(checkHello(helloFor(ca, none, 1, now)))).toBe("cert_invalid:missing_purpose")
      expect(rejection(checkHello(helloFor(ca, none, 2, now)))).toBe("cert_invalid:missing_purpose")
      const any = yield* opensslLeaf(ca, {
        key: p256,
        extensions: `${leafExtensions}\nextendedKeyUsage=anyExtendedKeyUsage`
      })
      expect(rejection(checkHello(helloFor(ca, any, 1, now)))).toBe("cert_invalid:missing_purpose")
      expect(rejection(checkHello(helloFor(ca, any, 2, now)))).toBe("cert_invalid:missing_purpose")
    }))

  it.effect("accepts a leaf that names both serverAuth and clientAuth in either role", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const both = yield* opensslLeaf(ca, {
        key: p256,
        extensions: `${leafExtensions}\nextendedKeyUsage=clientAuth,serverAuth`
      })
      expect(rejection(checkHello(helloFor(ca, both, 1, new Date())))).toBe("accepted")
      expect(rejection(checkHello(helloFor(ca, both, 2, new Date())))).toBe("accepted")
    }))

  it.effect("refuses a leaf with an RSA key or a P-521 key", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const extensions = `${leafExtensions}\nextendedKeyUsage=serverAuth`
      const rsa = yield* opensslLeaf(ca, { key: ["rsa:2048"], extensions })
      expect(rejection(checkHello(helloFor(ca, rsa, 1, new Date())))).toBe("cert_invalid:leaf_key_type")
      const p521 = yield* opensslLeaf(ca, { key: ["ec", "-pkeyopt", "ec_paramgen_curve:P-521"], extensions })
      expect(rejection(checkHello(helloFor(ca, p521, 1, new Date())))).toBe("cert_invalid:leaf_key_type")
    }))

  it.effect("refuses garbage, PEM and trailing bytes in place of either DER certificate without throwing", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const now = new Date()
      const garbage = [new Uint8Array(0), new Uint8Array([0x30]), new Uint8Array([0x30, 0x82, 0xff, 0xff, 1, 2])]
      for (const bytes of garbage) {
        expect(rejection(checkHello(helloFor(ca, bytes, 1, now)))).toBe("cert_invalid:leaf_unparseable")
        const input = { role: 1, infoHash: infoHash(bytes), caDer: bytes, leafDer: ca.certDer, now } as const
        expect(rejection(checkHello(input))).toBe("cert_invalid:ca_unparseable")
      }
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const trailing = new Uint8Array([...bridge.certDer, 0])
      expect(rejection(checkHello(helloFor(ca, trailing, 1, now)))).toBe("cert_invalid:leaf_unparseable")
      const pem = new TextEncoder().encode(bridge.certPem)
      expect(rejection(checkHello(helloFor(ca, pem, 1, now)))).toBe("cert_invalid:leaf_unparseable")
      const truncated = ca.certDer.subarray(0, ca.certDer.length - 10)
      expect(
        rejection(checkHello({ ...helloFor(ca, ca.certDer, 1, now), caDer: truncated, infoHash: infoHash(truncated) }))
      )
        .toBe("cert_invalid:ca_unparseable")
    }))

  it.effect("gives the same answers from a checker whose cache holds one entry", () =>
    Effect.gen(function*() {
      const check = makeHelloChecker({ cacheSize: 1 })
      const first = yield* makeCa({ commonName: "first ca" })
      const second = yield* makeCa({ commonName: "second ca" })
      const firstBridge = yield* makeLeaf({ ca: first, role: "bridge", commonName: "bridge" })
      const secondBroker = yield* makeLeaf({ ca: second, role: "broker", commonName: "broker" })
      const now = new Date()
      for (let round = 0; round < 3; round++) {
        expect(rejection(check(helloFor(first, firstBridge.certDer, 1, now)))).toBe("accepted")
        expect(rejection(check(helloFor(second, secondBroker.certDer, 2, now)))).toBe("accepted")
        expect(rejection(check(helloFor(second, firstBridge.certDer, 1, now)))).toBe("cert_invalid:not_issued_by_ca")
        expect(rejection(check(helloFor(first, firstBridge.certDer, 2, now)))).toBe("cert_invalid:missing_purpose")
      }
    }))

  it.effect("says why in a message that holds no hash and no key", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const error = Either.flip(
        checkHello({ ...helloFor(ca, bridge.certDer, 1, new Date()), infoHash: new Uint8Array(32) })
      )
      const message = Either.getOrThrow(error).message
      expect(message).toContain("does not hash to the info hash")
      expect(message).not.toContain(toHex(infoHash(ca.certDer)).slice(0, 12))
    }))
})

describe("HelloRejected messages", () => {
  it("fit an ERROR frame's reason with room for a prefix, and name no hash", () => {
    const reasons: ReadonlyArray<CertInvalidReason> = [
      "ca_unparseable",
      "not_a_ca",
      "ca_key_type",
      "leaf_unparseable",
      "leaf_key_type",
      "not_issued_by_ca",
      "bad_signature",
      "ca_not_yet_valid",
      "ca_expired",
      "leaf_not_yet_valid",
      "leaf_expired",
      "missing_purpose"
    ]
    const messages = [
      new HelloRejected({ code: "hash_mismatch", reason: "hash_mismatch" }).message,
      ...reasons.map((reason) => new HelloRejected({ code: "cert_invalid", reason }).message)
    ]
    expect(new Set(messages).size).toBe(messages.length)
    for (const message of messages) {
      expect(Buffer.byteLength(message)).toBeLessThanOrEqual(200)
      expect(message).not.toMatch(/[0-9a-f]{12}/)
    }
  })
})

describe("proof keys", () => {
  it("reads Ed25519 and ECDSA keys and refuses RSA keys and text that is no key", () => {
    expect(Either.isRight(readProofKey(vectors.bridge_leaf_key_pem))).toBe(true)
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey
    expect(Either.getOrThrow(Either.flip(readProofKey(rsa.export({ format: "pem", type: "pkcs8" }) as string))).reason)
      .toBe("key_type")
    expect(Either.getOrThrow(Either.flip(readProofKey("not a key"))).reason).toBe("unreadable")
    expect(() => signProof(rsa, proofInput)).toThrow(/not ECDSA P-256, P-384 or Ed25519/)
  })

  it("refuses to verify with an RSA public key instead of throwing", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
    const signature = signProof(createPrivateKey(vectors.bridge_leaf_key_pem), proofInput)
    expect(verifyProof(rsa.publicKey, proofInput, signature)).toBe(false)
  })
})
