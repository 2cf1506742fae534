import { toHex } from "@cloudtaser/pki/InfoHash"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as BeaconClient from "../src/BeaconClient.ts"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import * as OpsServer from "../src/OpsServer.ts"
import { clientOptions, endedOrClosed, eventually, makePairing, readBytes, startBeacon } from "./support/Beacon.ts"
import { header, rawConnect, rawHello } from "./support/RawClient.ts"

const get = (port: number, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: response.status, body: await response.text() }
  })

const sampleValue = (text: string, sample: string): number | undefined => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${sample} `))
  return line === undefined ? undefined : Number(line.slice(sample.length + 1))
}

/** A beacon and its operations server, wired as the beacon program wires them. */
const beaconWithOps = (drainDeadlineMs = 2_000) =>
  Effect.gen(function*() {
    const beacon = yield* startBeacon({ drainDeadlineMs })
    const ops = yield* OpsServer.make({ host: "127.0.0.1", port: 0, ready: Effect.sync(() => !beacon.draining) })
    return { beacon, opsPort: ops.address.port }
  })

describe("operations endpoint of a running beacon", () => {
  it.scopedLive("counts a relayed session, its bytes and a refusal, and labels none of them by hash or address", () =>
    Effect.gen(function*() {
      const { beacon, opsPort } = yield* beaconWithOps()
      const pairing = yield* makePairing("ops")

      const bridge = yield* Effect.fork(BeaconClient.connect(clientOptions(beacon, pairing, "bridge")))
      yield* eventually(() => beacon.waiting === 1)
      const waiting = yield* get(opsPort, "/metrics")
      expect(sampleValue(waiting.body, "cloudtaser_beacon_waiting_clients{role=\"bridge\"}")).toBe(1)

      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      const bridgeSession = yield* Fiber.join(bridge)
      bridgeSession.socket.end(Buffer.alloc(1000, 7))
      expect((yield* readBytes(broker.socket, 1000)).length).toBe(1000)
      broker.socket.end()
      yield* endedOrClosed(bridgeSession.socket)
      yield* eventually(() => beacon.connections === 0)

      const garbage = yield* rawConnect(beacon)
      yield* garbage.next
      yield* garbage.write(header(0x7e, 0))
      yield* eventually(() => beacon.connections === 0)

      const { body } = yield* get(opsPort, "/metrics")
      expect(sampleValue(body, "cloudtaser_beacon_sessions_total")).toBe(1)
      expect(sampleValue(body, "cloudtaser_beacon_sessions_active")).toBe(0)
      expect(sampleValue(body, "cloudtaser_beacon_connections_total")).toBe(3)
      expect(sampleValue(body, "cloudtaser_beacon_connections_open")).toBe(0)
      expect(sampleValue(body, "cloudtaser_beacon_waiting_clients{role=\"bridge\"}")).toBe(0)
      expect(sampleValue(body, "cloudtaser_beacon_relayed_bytes_total{direction=\"bridge_to_broker\"}")).toBe(1000)
      expect(sampleValue(body, "cloudtaser_beacon_pairing_latency_seconds_count")).toBe(1)
      expect(sampleValue(body, "cloudtaser_beacon_refusals_total{code=\"bad_frame\"}")).toBe(1)
      expect(body).not.toContain(toHex(pairing.infoHash).slice(0, 12))
      expect(body).not.toContain("127.0.0.1")
    }).pipe(Effect.provide(BeaconMetrics.Default)))

  it.scopedLive("reports ready until the drain starts, then 503 while a waiting client is sent away", () =>
    Effect.gen(function*() {
      const { beacon, opsPort } = yield* beaconWithOps()
      const pairing = yield* makePairing("ops drain")
      const waiter = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* waiter.next)._tag).toBe("Waiting")
      expect((yield* get(opsPort, "/readyz")).status).toBe(200)

      const drain = yield* Effect.fork(beacon.drain)
      yield* eventually(() => beacon.draining)
      expect((yield* get(opsPort, "/readyz")).status).toBe(503)
      expect((yield* get(opsPort, "/healthz")).status).toBe(200)
      const farewell = yield* waiter.nextNotPing
      expect(farewell._tag === "Error" ? farewell.code : undefined).toBe(9)
      yield* Fiber.join(drain)
      expect((yield* get(opsPort, "/readyz")).status).toBe(503)
    }).pipe(Effect.provide(BeaconMetrics.Default)))
})
