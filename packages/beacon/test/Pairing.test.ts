import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as BeaconClient from "../src/BeaconClient.ts"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import type { BeaconHandle } from "../src/BeaconServer.ts"
import type { Pairing } from "./support/Beacon.ts"
import { clientOptions, eventually, makePairing, readBytes, recordingMetrics, startBeacon } from "./support/Beacon.ts"

const exchange = (a: BeaconClient.BeaconSession, b: BeaconClient.BeaconSession) =>
  Effect.gen(function*() {
    a.socket.write("from a")
    b.socket.write("from b")
    expect((yield* readBytes(b.socket, 6)).toString()).toBe("from a")
    expect((yield* readBytes(a.socket, 6)).toString()).toBe("from b")
  })

/** Connects in the background, in its own scope, and returns the fiber and that scope. */
const connectInBackground = (options: BeaconClient.ConnectOptions) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const fiber = yield* BeaconClient.connect(options).pipe(Scope.extend(scope), Effect.fork)
    return { fiber, scope }
  })

const waitingFor = (beacon: BeaconHandle, count: number) => eventually(() => beacon.waiting === count)

const pairInOrder = (first: "bridge" | "broker") =>
  Effect.gen(function*() {
    const { layer, metrics } = recordingMetrics()
    const beacon = yield* startBeacon().pipe(Effect.provide(layer))
    const pairing = yield* makePairing()
    const second = first === "bridge" ? "broker" : "bridge"
    const early = yield* connectInBackground(clientOptions(beacon, pairing, first))
    yield* waitingFor(beacon, 1)
    expect(metrics.waiting[first]).toBe(1)
    const late = yield* BeaconClient.connect(clientOptions(beacon, pairing, second))
    const waiter = yield* Fiber.join(early.fiber)
    expect(waiter.waited).toBe(true)
    expect(late.waited).toBe(false)
    expect(Buffer.from(late.sessionId).equals(Buffer.from(waiter.sessionId))).toBe(true)
    expect(metrics.waiting).toEqual({ bridge: 0, broker: 0 })
    expect(metrics.calls).toContain("sessionStarted")
    expect(metrics.latencies.length).toBe(1)
    yield* exchange(waiter, late)
  })

describe("pairing", () => {
  it.scopedLive("pairs a bridge that waits with a broker that arrives later", () => pairInOrder("bridge"))

  it.scopedLive("pairs a broker that waits with a bridge that arrives later", () => pairInOrder("broker"))

  it.scopedLive("pairs the longest waiter first", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const pairing = yield* makePairing()
      const ids: Array<string> = []
      const onWaiting = (waiting: { readonly sessionId: Uint8Array }) => {
        ids.push(Buffer.from(waiting.sessionId).toString("hex"))
      }
      const first = yield* connectInBackground(clientOptions(beacon, pairing, "bridge", { onWaiting }))
      yield* waitingFor(beacon, 1)
      const second = yield* connectInBackground(clientOptions(beacon, pairing, "bridge", { onWaiting }))
      yield* waitingFor(beacon, 2)

      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      expect(Buffer.from(broker.sessionId).toString("hex")).toBe(ids[0])
      const paired = yield* Fiber.join(first.fiber)
      yield* exchange(paired, broker)
      expect(beacon.waiting).toBe(1)

      const broker2 = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      expect(Buffer.from(broker2.sessionId).toString("hex")).toBe(ids[1])
      yield* exchange(yield* Fiber.join(second.fiber), broker2)
    }))

  it.scopedLive("never pairs across info hashes or within one role", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const one = yield* makePairing("one")
      const other = yield* makePairing("other")
      yield* connectInBackground(clientOptions(beacon, one, "bridge"))
      yield* waitingFor(beacon, 1)

      // A max wait of 0 pairs only with a client already waiting, so each refusal shows that none matched.
      const otherHash = yield* BeaconClient.connect(clientOptions(beacon, other, "broker", { maxWaitMs: 0 })).pipe(
        Effect.flip
      )
      expect(otherHash._tag === "BeaconRefused" && otherHash.codeName).toBe("wait_expired")
      const sameRole = yield* BeaconClient.connect(clientOptions(beacon, one, "bridge", { maxWaitMs: 0 })).pipe(
        Effect.flip
      )
      expect(sameRole._tag === "BeaconRefused" && sameRole.codeName).toBe("wait_expired")
      expect(beacon.waiting).toBe(1)

      const broker = yield* BeaconClient.connect(clientOptions(beacon, one, "broker", { maxWaitMs: 0 }))
      expect(broker.waited).toBe(false)
    }))

  it.scopedLive("never pairs a waiter that has gone", () =>
    Effect.gen(function*() {
      const { layer, metrics } = recordingMetrics()
      const beacon = yield* startBeacon().pipe(Effect.provide(layer))
      const pairing: Pairing = yield* makePairing()
      const gone = yield* connectInBackground(clientOptions(beacon, pairing, "bridge"))
      yield* waitingFor(beacon, 1)
      yield* Fiber.interrupt(gone.fiber)
      yield* Scope.close(gone.scope, Exit.void)
      yield* waitingFor(beacon, 0)
      expect(metrics.waiting.bridge).toBe(0)

      const refused = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker", { maxWaitMs: 0 })).pipe(
        Effect.flip
      )
      expect(refused._tag === "BeaconRefused" && refused.codeName).toBe("wait_expired")
    }))

  it.scopedLive("queues a HELLO that asks for an unbounded wait", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const pairing = yield* makePairing()
      const bridge = yield* connectInBackground(clientOptions(beacon, pairing, "bridge", { maxWaitMs: Infinity }))
      yield* waitingFor(beacon, 1)
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      yield* exchange(yield* Fiber.join(bridge.fiber), broker)
    }))
})
