import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import { makeCa, makeLeaf } from "../src/Certificates.ts"
import { checkHello, verifyProof } from "../src/HelloCheck.ts"
import { infoHash } from "../src/InfoHash.ts"
import { certificatesFromPem, certificateToPem, privateKeyFromPem, privateKeyToPem } from "../src/Pem.ts"

describe("Pem properties", () => {
  it.prop("any bytes come back from PEM unchanged", [fc.uint8Array({ maxLength: 2048 })], ([bytes]) => {
    fc.pre(bytes.length > 0)
    expect(Either.getOrThrow(privateKeyFromPem(privateKeyToPem(bytes)))).toEqual(bytes)
  })

  it.prop(
    "a bundle gives back each of its certificates in order",
    [fc.array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { minLength: 1, maxLength: 5 })],
    ([blocks]) => {
      const bundle = blocks.map(certificateToPem).join("\n")
      expect(Either.getOrThrow(certificatesFromPem(bundle))).toEqual(blocks)
    }
  )
})

describe("HelloCheck properties", () => {
  it.effect("refuses a leaf with any one byte changed, and never throws", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const base = { role: 1, infoHash: infoHash(ca.certDer), caDer: ca.certDer, now: new Date() } as const
      expect(Either.isRight(checkHello({ ...base, leafDer: bridge.certDer }))).toBe(true)
      fc.assert(
        fc.property(
          fc.nat({ max: bridge.certDer.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          (at, mask) => {
            const leafDer = new Uint8Array(bridge.certDer)
            leafDer[at]! ^= mask
            expect(Either.isLeft(checkHello({ ...base, leafDer }))).toBe(true)
          }
        ),
        { numRuns: 300 }
      )
    }))

  it.effect("refuses arbitrary bytes as CA or leaf, and arbitrary signatures, without throwing", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge" })
      const leaf = Either.getOrThrow(
        checkHello({
          role: 1,
          infoHash: infoHash(ca.certDer),
          caDer: ca.certDer,
          leafDer: bridge.certDer,
          now: new Date()
        })
      )
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 1200 }), fc.uint8Array({ maxLength: 120 }), (bytes, signature) => {
          const now = new Date()
          const asCa = checkHello({ role: 2, infoHash: infoHash(bytes), caDer: bytes, leafDer: bridge.certDer, now })
          expect(Either.isLeft(asCa) && asCa.left.code).toBe("cert_invalid")
          const asLeaf = checkHello({ role: 1, infoHash: infoHash(ca.certDer), caDer: ca.certDer, leafDer: bytes, now })
          expect(Either.isLeft(asLeaf) && asLeaf.left.reason).toBe("leaf_unparseable")
          expect(verifyProof(leaf, bytes, signature)).toBe(false)
        })
      )
    }))
})
