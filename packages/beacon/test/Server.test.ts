import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as tls from "node:tls"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import * as BeaconServer from "../src/BeaconServer.ts"
import { beaconCertificate, startBeacon } from "./support/Beacon.ts"

/** Completes a TLS handshake with the beacon and reports what was agreed and the first bytes it sent. */
const handshake = (port: number, options: tls.ConnectionOptions) =>
  Effect.async<{ readonly protocol: string | null; readonly group: string | undefined; readonly first: number }, Error>(
    (resume) => {
      const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options })
      socket.once("data", (chunk: Buffer) => {
        const info = socket.getEphemeralKeyInfo()
        const group = info !== null && "name" in info ? info.name : undefined
        resume(Effect.succeed({ protocol: socket.getProtocol(), group, first: chunk[0]! }))
        socket.destroy()
      })
      socket.once("error", (error) => resume(Effect.fail(error)))
    }
  )

describe("BeaconServer", () => {
  it.scopedLive("agrees on TLS 1.3 with the hybrid post-quantum group, still accepts TLS 1.2 and classical", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const modern = yield* handshake(beacon.address.port, { ALPNProtocols: ["cloudtaser-beacon/1"] })
      expect(modern).toEqual({ protocol: "TLSv1.3", group: "X25519MLKEM768", first: 0x01 })
      const classical = yield* handshake(beacon.address.port, { ecdhCurve: "X25519" })
      expect(classical).toEqual({ protocol: "TLSv1.3", group: "X25519", first: 0x01 })
      const old = yield* handshake(beacon.address.port, { maxVersion: "TLSv1.2" })
      expect(old.protocol).toBe("TLSv1.2")
      expect(old.first).toBe(0x01)
    }))

  it.scopedLive("reports a port in use and unusable credentials as start errors that say what to do", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const certificate = yield* beaconCertificate
      const inUse = yield* BeaconServer.make({
        host: "127.0.0.1",
        port: beacon.address.port,
        tls: { certPem: certificate.certPem, keyPem: certificate.keyPem }
      }).pipe(Effect.provide(BeaconMetrics.Noop), Effect.flip)
      expect(inUse.reason).toBe("address_in_use")
      expect(inUse.message).toContain("--port")

      const badKey = yield* BeaconServer.make({
        host: "127.0.0.1",
        port: 0,
        tls: { certPem: certificate.certPem, keyPem: "not a key" }
      }).pipe(Effect.provide(BeaconMetrics.Noop), Effect.flip)
      expect(badKey.reason).toBe("tls_credentials")
    }))
})
