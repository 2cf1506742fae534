import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as net from "node:net"
import * as BeaconClient from "../src/BeaconClient.ts"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import {
  clientOptions,
  closed,
  endedOrClosed,
  eventually,
  makePairing,
  readBytes,
  recordingTracer,
  startBeacon
} from "./support/Beacon.ts"
import { rawConnect } from "./support/RawClient.ts"

describe("drain", () => {
  it.scopedLive("refuses waiters and new connections, lets a paired session flow to the deadline, then cuts it", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const beacon = yield* startBeacon({ drainDeadlineMs: 700 }).pipe(
        Effect.provide(BeaconMetrics.Noop),
        Effect.withTracer(tracer)
      )
      const pairing = yield* makePairing()
      const lonely = yield* makePairing("lonely")
      const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      const bridge = yield* Fiber.join(bridgeFiber)
      const waiterFiber = yield* BeaconClient.connect(clientOptions(beacon, lonely, "bridge")).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      // A client between CHALLENGE and HELLO is not paired either.
      const undecided = yield* rawConnect(beacon)
      expect((yield* undecided.next)._tag).toBe("Challenge")

      expect(beacon.draining).toBe(false)
      const drainFiber = yield* beacon.drain.pipe(Effect.fork)
      yield* eventually(() => beacon.draining)

      const refused = yield* Fiber.join(waiterFiber).pipe(Effect.flip)
      expect(refused._tag === "BeaconRefused" && refused.codeName).toBe("shutting_down")
      const undecidedGets = yield* undecided.next
      expect(undecidedGets._tag === "Error" && undecidedGets.code).toBe(9)

      const late = yield* BeaconClient.connect(clientOptions(beacon, lonely, "broker")).pipe(Effect.flip)
      expect(late._tag === "BeaconConnectionError" && late.reason).toBe("unreachable")

      bridge.socket.write("during drain")
      expect((yield* readBytes(broker.socket, 12)).toString()).toBe("during drain")
      broker.socket.write("reply")
      expect((yield* readBytes(bridge.socket, 5)).toString()).toBe("reply")

      yield* Fiber.join(drainFiber)
      yield* Effect.all([endedOrClosed(bridge.socket), endedOrClosed(broker.socket)])
      expect(beacon.connections).toBe(0)
      const session = spans.find((span) => span.name === "beacon.session")
      expect(session?.attributes.get("end_reason")).toBe("drain_deadline")
    }))

  it.scopedLive("finishes as soon as the last session ends", () =>
    Effect.gen(function*() {
      // The deadline is longer than the test timeout: the test passes only if the drain ends with the session.
      const beacon = yield* startBeacon({ drainDeadlineMs: 600_000 }).pipe(Effect.provide(BeaconMetrics.Noop))
      const pairing = yield* makePairing()
      const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      const bridge = yield* Fiber.join(bridgeFiber)
      const drainFiber = yield* beacon.drain.pipe(Effect.fork)
      yield* eventually(() => beacon.draining)
      bridge.socket.end("bye")
      expect((yield* readBytes(broker.socket, 3)).toString()).toBe("bye")
      broker.socket.end()
      bridge.socket.resume()
      yield* Effect.all([closed(bridge.socket), closed(broker.socket)])
      yield* Fiber.join(drainFiber)
      expect(beacon.connections).toBe(0)
    }))

  it.scopedLive("closing its scope closes every connection, even one still in its TLS handshake", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const beacon = yield* startBeacon({ helloTimeoutMs: 600_000 }).pipe(
        Effect.provide(BeaconMetrics.Noop),
        Scope.extend(scope)
      )
      const pairing = yield* makePairing()
      const waiterFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      const silent = net.connect({ host: "127.0.0.1", port: beacon.address.port })
      yield* Effect.addFinalizer(() => Effect.sync(() => silent.destroy()))
      yield* Effect.async<void>((resume) => void silent.once("connect", () => resume(Effect.void)))

      yield* Scope.close(scope, Exit.void)
      const failure = yield* Fiber.join(waiterFiber).pipe(Effect.flip)
      expect(failure._tag === "BeaconConnectionError" && failure.reason).toBe("closed")
      yield* endedOrClosed(silent)
    }))
})
