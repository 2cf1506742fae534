import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as BeaconClient from "../src/BeaconClient.ts"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import * as Tracing from "../src/Tracing.ts"
import {
  clientOptions,
  closed,
  eventually,
  makePairing,
  readBytes,
  recordingTracer,
  startBeacon
} from "./support/Beacon.ts"

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const clientSpanId = "00f067aa0ba902b7"

describe("session spans", () => {
  it.scopedLive("makes one beacon.session span per session, a child of the client's traceparent", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop), Effect.withTracer(tracer))
      const pairing = yield* makePairing()
      const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      const broker = yield* BeaconClient.connect(
        clientOptions(beacon, pairing, "broker", { traceparent: `00-${traceId}-${clientSpanId}-01` })
      )
      const bridge = yield* Fiber.join(bridgeFiber)
      bridge.socket.write("12345")
      expect((yield* readBytes(broker.socket, 5)).toString()).toBe("12345")
      broker.socket.end("123")
      expect((yield* readBytes(bridge.socket, 3)).toString()).toBe("123")
      bridge.socket.end()
      broker.socket.resume()
      bridge.socket.resume()
      yield* Effect.all([closed(bridge.socket), closed(broker.socket)])

      const sessions = spans.filter((span) => span.name === "beacon.session")
      yield* eventually(() => sessions[0]?.status._tag === "Ended")
      expect(sessions.length).toBe(1)
      const span = sessions[0]!
      expect(span.traceId).toBe(traceId)
      const parent = Option.getOrUndefined(span.parent)
      expect(parent?.spanId).toBe(clientSpanId)
      const hashHex = Buffer.from(pairing.infoHash).toString("hex")
      expect(span.attributes.get("beacon.info_hash")).toBe(hashHex.slice(0, 12))
      expect(typeof span.attributes.get("beacon.wait_ms")).toBe("number")
      expect(span.attributes.get("beacon.bytes_bridge_to_broker")).toBe(5)
      expect(span.attributes.get("beacon.bytes_broker_to_bridge")).toBe(3)
      expect(span.attributes.get("end_reason")).toBe("closed")
      for (const value of span.attributes.values()) expect(String(value)).not.toContain(hashHex)
    }))

  it.scopedLive("starts a root span when the traceparent is not a valid one", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop), Effect.withTracer(tracer))
      const pairing = yield* makePairing()
      const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
      yield* eventually(() => beacon.waiting === 1)
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker", { traceparent: "garbage" }))
      const bridge = yield* Fiber.join(bridgeFiber)
      bridge.socket.end()
      broker.socket.end()
      bridge.socket.resume()
      broker.socket.resume()
      yield* Effect.all([closed(bridge.socket), closed(broker.socket)])
      yield* eventually(() => beacon.connections === 0)
      const span = spans.find((span) => span.name === "beacon.session")!
      expect(Option.isNone(span.parent)).toBe(true)
      expect(span.attributes.get("end_reason")).toBe("closed")
    }))

  it.scopedLive("exports the session span through the OpenTelemetry layer, in the client's trace", () =>
    Effect.gen(function*() {
      const bodies: Array<string> = []
      const collector = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const server = Http.createServer((request, response) => {
            const chunks: Array<Buffer> = []
            request.on("data", (chunk: Buffer) => chunks.push(chunk))
            request.on("end", () => {
              bodies.push(Buffer.concat(chunks).toString("utf8"))
              response.writeHead(200, { "content-type": "application/json" }).end("{}")
            })
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`

      yield* Effect.scoped(Effect.gen(function*() {
        const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
        const pairing = yield* makePairing()
        const bridgeFiber = yield* BeaconClient.connect(
          clientOptions(beacon, pairing, "bridge", { traceparent: `00-${traceId}-${clientSpanId}-01` })
        ).pipe(Effect.fork)
        yield* eventually(() => beacon.waiting === 1)
        const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
        const bridge = yield* Fiber.join(bridgeFiber)
        bridge.socket.end()
        broker.socket.end()
        bridge.socket.resume()
        broker.socket.resume()
        yield* Effect.all([closed(bridge.socket), closed(broker.socket)])
        yield* eventually(() => beacon.connections === 0)
      })).pipe(Effect.provide(Tracing.layer({ endpoint })))

      const exported = bodies.map((body) => JSON.stringify(JSON.parse(body)))
      const session = exported.find((body) => body.includes("beacon.session"))
      expect(session).toBeDefined()
      expect(session).toContain(traceId)
      expect(session).toContain("end_reason")
    }))
})
