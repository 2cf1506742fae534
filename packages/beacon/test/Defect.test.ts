import { ErrorCode } from "@cloudtaser/protocol/ErrorCode"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AddressInfo } from "node:net"
import * as tls from "node:tls"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import { ALPN_PROTOCOL } from "../src/BeaconServer.ts"
import type { CheckHello } from "../src/internal/engine.ts"
import { Engine } from "../src/internal/engine.ts"
import { beaconCertificate, makePairing } from "./support/Beacon.ts"
import { rawHello, type Target } from "./support/RawClient.ts"

// The HELLO that trips the check below: a max wait no real client sends.
const TRIPWIRE_WAIT_MS = 4242

/**
 * An engine behind a plain TLS listener whose HELLO check has a bug: it throws for the tripwire HELLO and accepts
 * every other one. Nothing in the beacon throws on purpose, so this is the one honest way to reach ERROR internal.
 */
const engineWithFaultyCheck = (defects: Array<unknown>) =>
  Effect.gen(function*() {
    const metrics = yield* BeaconMetrics
    const certificate = yield* beaconCertificate
    const checkHello: CheckHello = (hello) => {
      if (hello.maxWaitMs === TRIPWIRE_WAIT_MS) throw new Error("a bug in the HELLO check")
      return undefined
    }
    const engine = new Engine({
      helloTimeoutMs: 2_000,
      pingIntervalMs: 1_000,
      maxWaitCapMs: 60_000,
      limits: { perHash: 10, perSource: 10, total: 10 },
      lingerMs: 500
    }, {
      metrics,
      checkHello,
      startSpan: () => ({ end: () => {} }),
      onDefect: (defect) => defects.push(defect)
    })
    const server = yield* Effect.acquireRelease(
      Effect.async<tls.Server>((resume) => {
        const server = tls.createServer({
          cert: certificate.certPem,
          key: certificate.keyPem,
          ALPNProtocols: [ALPN_PROTOCOL],
          allowHalfOpen: true
        })
        server.on("secureConnection", (socket) => engine.accept(socket))
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          engine.destroyAll("shutdown")
          server.close(() => resume(Effect.void))
        })
    )
    const target: Target = { address: { host: "127.0.0.1", port: (server.address() as AddressInfo).port } }
    return { engine, target }
  }).pipe(Effect.provide(BeaconMetrics.Noop))

describe("a defect on one connection", () => {
  it.scopedLive("gets that client ERROR internal and a close, is reported once, and the engine pairs on", () =>
    Effect.gen(function*() {
      const defects: Array<unknown> = []
      const { engine, target } = yield* engineWithFaultyCheck(defects)
      const pairing = yield* makePairing("defect")

      const unlucky = yield* rawHello(target, pairing, "bridge", { maxWaitMs: TRIPWIRE_WAIT_MS })
      const refusal = yield* unlucky.next
      expect(refusal._tag === "Error" ? refusal.code : refusal._tag).toBe(ErrorCode.internal)
      expect(refusal._tag === "Error" ? refusal.reason : "").toContain("connect again")
      expect((yield* unlucky.next)._tag).toBe("Closed")
      expect(defects).toHaveLength(1)
      expect(String(defects[0])).toContain("a bug in the HELLO check")

      const bridge = yield* rawHello(target, pairing, "bridge")
      expect((yield* bridge.next)._tag).toBe("Waiting")
      const broker = yield* rawHello(target, pairing, "broker")
      expect((yield* broker.next)._tag).toBe("Paired")
      expect((yield* bridge.next)._tag).toBe("Paired")
      expect(engine.waitingCount).toBe(0)
    }))
})
