import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { createHash, randomBytes } from "node:crypto"
import type { Duplex } from "node:stream"
import * as BeaconClient from "../src/BeaconClient.ts"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import {
  clientOptions,
  closed,
  drainToHash,
  endedOrClosed,
  eventually,
  makePairing,
  readBytes,
  recordingMetrics,
  startBeacon
} from "./support/Beacon.ts"
import { rawHello } from "./support/RawClient.ts"

const MiB = 1024 * 1024

/** Writes `total` random bytes in chunks, honouring backpressure, then half-closes; returns their SHA-256. */
const sendRandom = (socket: Duplex, total: number) =>
  Effect.async<string>((resume) => {
    const hash = createHash("sha256")
    let sent = 0
    const pump = () => {
      while (sent < total) {
        const chunk = randomBytes(Math.min(256 * 1024, total - sent))
        hash.update(chunk)
        sent += chunk.length
        if (!socket.write(chunk)) {
          socket.once("drain", pump)
          return
        }
      }
      socket.end()
      resume(Effect.succeed(hash.digest("hex")))
    }
    pump()
  })

const pair = Effect.fn("pair")(function*(overrides: Parameters<typeof startBeacon>[0] = {}) {
  const beacon = yield* startBeacon(overrides)
  const pairing = yield* makePairing()
  const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
  yield* eventually(() => beacon.waiting === 1)
  const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
  const bridge = yield* Fiber.join(bridgeFiber)
  return { beacon, pairing, bridge, broker }
})

describe("relay", () => {
  it.scopedLive("copies tens of MiB both ways at once, intact, and counts them", () =>
    Effect.gen(function*() {
      const { layer, metrics } = recordingMetrics()
      const { bridge, broker } = yield* pair().pipe(Effect.provide(layer))
      const size = 24 * MiB
      const [sentByBridge, sentByBroker, atBroker, atBridge] = yield* Effect.all([
        sendRandom(bridge.socket, size),
        sendRandom(broker.socket, size + 12345),
        drainToHash(broker.socket),
        drainToHash(bridge.socket)
      ], { concurrency: "unbounded" })
      expect(atBroker).toEqual({ bytes: size, sha256: sentByBridge })
      expect(atBridge).toEqual({ bytes: size + 12345, sha256: sentByBroker })
      yield* Effect.all([closed(bridge.socket), closed(broker.socket)])
      yield* eventually(() => metrics.sessions.length === 1)
      expect(metrics.sessions[0]).toEqual({ bridgeToBroker: size, brokerToBridge: size + 12345 })
    }))

  it.scopedLive("passes a half-close on as a half-close, and the other direction keeps flowing", () =>
    Effect.gen(function*() {
      const { bridge, broker } = yield* pair().pipe(Effect.provide(BeaconMetrics.Noop))
      bridge.socket.end("last words")
      const received = yield* drainToHash(broker.socket)
      expect(received.bytes).toBe("last words".length)
      // The broker saw the end of the bridge's stream but can still answer.
      broker.socket.end("reply after end")
      expect((yield* readBytes(bridge.socket, "reply after end".length)).toString()).toBe("reply after end")
      yield* Effect.all([closed(bridge.socket), closed(broker.socket)])
    }))

  it.scopedLive("drops both sides when one side fails", () =>
    Effect.gen(function*() {
      const { layer, metrics } = recordingMetrics()
      const beacon = yield* startBeacon().pipe(Effect.provide(layer))
      const pairing = yield* makePairing()
      const raw = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* raw.next)._tag).toBe("Waiting")
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      expect((yield* raw.nextNotPing)._tag).toBe("Paired")
      yield* raw.write(Buffer.from("0500000000", "hex"))
      broker.socket.write("hello")
      yield* eventually(() => raw.peerBytes().toString() === "hello")
      raw.tcp.resetAndDestroy()
      yield* endedOrClosed(broker.socket)
      yield* eventually(() => beacon.connections === 0)
      expect(metrics.sessions.length).toBe(1)
      expect(metrics.open.count).toBe(0)
    }))

  it.scopedLive("delivers bytes sent in the same write as READY to the peer first", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const pairing = yield* makePairing()
      const raw = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* raw.next)._tag).toBe("Waiting")
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      expect((yield* raw.nextNotPing)._tag).toBe("Paired")
      // READY and the first peer bytes in one write, then more.
      yield* raw.write(Buffer.concat([Buffer.from("0500000000", "hex"), Buffer.from("early|")]))
      yield* raw.write(Buffer.from("later"))
      expect((yield* readBytes(broker.socket, 11)).toString()).toBe("early|later")
      broker.socket.write("back")
      yield* eventually(() => raw.peerBytes().toString() === "back")
    }))

  it.scopedLive("drops PONGs between PAIRED and READY", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const pairing = yield* makePairing()
      const raw = yield* rawHello(beacon, pairing, "broker")
      expect((yield* raw.next)._tag).toBe("Waiting")
      const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
      expect((yield* raw.nextNotPing)._tag).toBe("Paired")
      yield* raw.write(Buffer.from("07000000080102030405060708" + "0500000000", "hex"))
      yield* raw.write(Buffer.from("payload"))
      const bridge = yield* Fiber.join(bridgeFiber)
      expect((yield* readBytes(bridge.socket, 7)).toString()).toBe("payload")
    }))
})
