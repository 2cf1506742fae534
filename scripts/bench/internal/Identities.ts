/**
 * The credentials the benchmark's clients present: pairing CAs with a bridge and a broker leaf each, made with the
 * project's own PKI so that the beacon checks exactly what it checks in production (ECDSA P-256).
 */
import { makeCa, makeLeaf, makeServerCertificate } from "@cloudtaser/pki/Certificates"
import { infoHash } from "@cloudtaser/pki/InfoHash"
import { Effect } from "effect"
import { createPrivateKey, type KeyObject } from "node:crypto"

/** One leaf certificate and its private key. */
export interface Leaf {
  readonly der: Uint8Array
  readonly key: KeyObject
}

/** One pairing: a CA (whose DER hashes to the info hash) and a leaf for each role. */
export interface Identity {
  readonly infoHash: Uint8Array
  readonly caDer: Uint8Array
  readonly bridge: Leaf
  readonly broker: Leaf
}

const leaf = (issued: { readonly certDer: Uint8Array; readonly keyPem: string }): Leaf => ({
  der: issued.certDer,
  key: createPrivateKey(issued.keyPem)
})

/** Makes one pairing identity. */
export const makeIdentity = (name: string) =>
  Effect.gen(function*() {
    const ca = yield* makeCa({ commonName: `${name} ca` })
    const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: `${name} bridge` })
    const broker = yield* makeLeaf({ ca, role: "broker", commonName: `${name} broker` })
    return {
      infoHash: infoHash(ca.certDer),
      caDer: ca.certDer,
      bridge: leaf(bridge),
      broker: leaf(broker)
    } satisfies Identity
  })

/** Makes `count` identities, one per concurrent worker, so that no two workers' clients can pair with each other. */
export const makeIdentities = (count: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) => makeIdentity(`bench ${i}`), { concurrency: 8 })

/** A self-signed certificate for 127.0.0.1, used by the beacon, haproxy's frontend and the TLS backend. */
export const makeLoopbackServerCertificate = makeServerCertificate({
  commonName: "bench.cloudtaser.invalid",
  ipAddresses: ["127.0.0.1"]
})
