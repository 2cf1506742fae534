import { encodeFrame, pong } from "@cloudtaser/protocol/Frame"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as BeaconClient from "../src/BeaconClient.ts"
import { clientOptions, eventually, makePairing, recordingMetrics, startBeacon } from "./support/Beacon.ts"
import type { RawClient } from "./support/RawClient.ts"
import { rawHello } from "./support/RawClient.ts"

const setup = Effect.gen(function*() {
  const { layer, metrics } = recordingMetrics()
  const beacon = yield* startBeacon({ pingIntervalMs: 100 }).pipe(Effect.provide(layer))
  const pairing = yield* makePairing()
  return { beacon, metrics, pairing }
})

/** Reads frames until the next PING and returns its data. */
const nextPing = (client: RawClient) =>
  Effect.gen(function*() {
    const frame = yield* client.next
    if (frame._tag !== "Ping") return yield* Effect.dieMessage(`expected PING, got ${frame._tag}`)
    return frame.data
  })

describe("liveness while waiting", () => {
  it.scopedLive("announces the ping interval and closes, without a frame, a client that never answers", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup
      const client = yield* rawHello(beacon, pairing, "bridge")
      const waiting = yield* client.next
      expect(waiting._tag === "Waiting" && waiting.pingIntervalMs).toBe(100)
      yield* nextPing(client)
      yield* nextPing(client)
      expect((yield* client.next)._tag).toBe("Closed")
      yield* eventually(() => beacon.waiting === 0 && metrics.open.count === 0)
      expect(metrics.refusals).toEqual([])
      expect(metrics.waiting.bridge).toBe(0)
    }))

  it.scopedLive("keeps a client that answers one PING in two, ignores stray PONGs, and pairs it later", () =>
    Effect.gen(function*() {
      const { beacon, pairing } = yield* setup
      const client = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* client.next)._tag).toBe("Waiting")
      yield* client.write(encodeFrame(pong(new Uint8Array(8).fill(7))))
      for (let i = 0; i < 8; i++) {
        const data = yield* nextPing(client)
        if (i % 2 === 1) yield* client.write(encodeFrame(pong(data)))
      }
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      expect(broker.waited).toBe(false)
      expect((yield* client.nextNotPing)._tag).toBe("Paired")
    }))

  it.scopedLive("BeaconClient answers PINGs by itself while it waits", () =>
    Effect.gen(function*() {
      const { beacon, pairing } = yield* setup
      let waitingSeen = 0
      const bridgeFiber = yield* BeaconClient.connect(
        clientOptions(beacon, pairing, "bridge", { onWaiting: () => waitingSeen++ })
      ).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      // Long enough for several PINGs: a client that did not answer would be gone after the third.
      yield* Effect.sleep("600 millis")
      expect(beacon.waiting).toBe(1)
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      const bridge = yield* Fiber.join(bridgeFiber)
      expect(bridge.waited).toBe(true)
      expect(waitingSeen).toBe(1)
      expect(Buffer.from(bridge.sessionId).equals(Buffer.from(broker.sessionId))).toBe(true)
    }))

  it.scopedLive("never pairs a waiter that left the last two PINGs unanswered", () =>
    Effect.gen(function*() {
      const { layer, metrics } = recordingMetrics()
      // A long ping interval: the silent waiter is still open, two PINGs unanswered, when the broker comes.
      const beacon = yield* startBeacon({ pingIntervalMs: 300 }).pipe(Effect.provide(layer))
      const pairing = yield* makePairing()
      const silent = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* silent.next)._tag).toBe("Waiting")
      yield* nextPing(silent)
      yield* nextPing(silent)
      const refused = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker", { maxWaitMs: 0 })).pipe(
        Effect.flip
      )
      expect(refused._tag === "BeaconRefused" && refused.codeName).toBe("wait_expired")
      expect((yield* silent.next)._tag).toBe("Closed")
      expect(metrics.waiting).toEqual({ bridge: 0, broker: 0 })
    }))
})
