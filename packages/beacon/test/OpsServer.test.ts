import { describe, expect, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import * as OpsServer from "../src/OpsServer.ts"

const get = (port: number, path: string, method = "GET") =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { method })
    return { status: response.status, contentType: response.headers.get("content-type"), body: await response.text() }
  })

/** Every label value in a Prometheus text exposition. */
const labelValues = (text: string): Array<string> => Array.from(text.matchAll(/(\w+)="([^"]*)"/g), (match) => match[2])

describe("OpsServer", () => {
  it.scoped("answers /healthz and /readyz, and /readyz turns 503 once the beacon stops being ready", () =>
    Effect.gen(function*() {
      const ready = yield* Ref.make(true)
      const ops = yield* OpsServer.make({ host: "127.0.0.1", port: 0, ready: Ref.get(ready) })
      expect(ops.address.port).toBeGreaterThan(0)

      expect((yield* get(ops.address.port, "/healthz")).status).toBe(200)
      expect((yield* get(ops.address.port, "/readyz")).status).toBe(200)

      yield* Ref.set(ready, false)
      const draining = yield* get(ops.address.port, "/readyz")
      expect(draining.status).toBe(503)
      expect(draining.body).toContain("draining")
      expect((yield* get(ops.address.port, "/healthz")).status).toBe(200)
    }).pipe(Effect.provide(BeaconMetrics.Default)))

  it.scoped("serves the metrics as Prometheus text with only bounded label values", () =>
    Effect.gen(function*() {
      const metrics = yield* BeaconMetrics
      metrics.connectionOpened()
      metrics.connectionOpened()
      metrics.waitingChanged("bridge", 1)
      metrics.sessionStarted()
      metrics.sessionEnded(1200, 34)
      metrics.paired(0.003)
      metrics.refused("proof_invalid")
      const ops = yield* OpsServer.make({ host: "127.0.0.1", port: 0, ready: Effect.succeed(true) })

      const response = yield* get(ops.address.port, "/metrics")
      expect(response.status).toBe(200)
      expect(response.contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
      expect(response.body).toContain("cloudtaser_beacon_connections_total 2\n")
      expect(response.body).toContain("cloudtaser_beacon_connections_open 2\n")
      expect(response.body).toContain("cloudtaser_beacon_waiting_clients{role=\"bridge\"} 1\n")
      expect(response.body).toContain("cloudtaser_beacon_relayed_bytes_total{direction=\"bridge_to_broker\"} 1200\n")
      expect(response.body).toContain("cloudtaser_beacon_refusals_total{code=\"proof_invalid\"} 1\n")
      expect(response.body).toContain("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"0.005\"} 1\n")

      const values = new Set(labelValues(response.body))
      const allowed = new Set([
        "bridge",
        "broker",
        "bridge_to_broker",
        "broker_to_bridge",
        "bad_frame",
        "unsupported_version",
        "hello_timeout",
        "proof_invalid",
        "hash_mismatch",
        "cert_invalid",
        "wait_expired",
        "capacity",
        "shutting_down",
        "frame_too_large",
        "internal"
      ])
      for (const value of values) {
        expect(value).not.toMatch(/[0-9a-f]{12,}/i)
        expect(value).not.toMatch(/\d+\.\d+\.\d+\.\d+|:\d+$|::/)
        if (!/^(\d+(\.\d+)?|\+Inf)$/.test(value)) expect(allowed).toContain(value)
      }
    }).pipe(Effect.provide(BeaconMetrics.Default)))

  it.scoped("answers 404 to any other path or method", () =>
    Effect.gen(function*() {
      const ops = yield* OpsServer.make({ host: "127.0.0.1", port: 0, ready: Effect.succeed(true) })
      expect((yield* get(ops.address.port, "/")).status).toBe(404)
      expect((yield* get(ops.address.port, "/metrics/extra")).status).toBe(404)
      expect((yield* get(ops.address.port, "/metrics", "POST")).status).toBe(404)
    }).pipe(Effect.provide(BeaconMetrics.Noop)))

  it.scoped("fails with an error naming the flag when the address is taken", () =>
    Effect.gen(function*() {
      const first = yield* OpsServer.make({ host: "127.0.0.1", port: 0, ready: Effect.succeed(true) })
      const error = yield* Effect.flip(
        OpsServer.make({ host: "127.0.0.1", port: first.address.port, ready: Effect.succeed(true) })
      )
      expect(error._tag).toBe("OpsListenError")
      expect(error.message).toContain("EADDRINUSE")
      expect(error.message).toContain("--ops-addr")
    }).pipe(Effect.provide(BeaconMetrics.Noop)))
})
