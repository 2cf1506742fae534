/**
 * What the beacon tests share: certificates from @cloudtaser/pki, a beacon on 127.0.0.1 port 0, the client options
 * that reach it, a metrics double that records every call, and helpers to read a paired socket.
 */
import { makeCa, makeLeaf } from "@cloudtaser/pki/Certificates"
import { infoHash } from "@cloudtaser/pki/InfoHash"
import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { Effect, Layer, Schedule, Tracer } from "effect"
import { createHash } from "node:crypto"
import type { Duplex } from "node:stream"
import type { ConnectOptions } from "../../src/BeaconClient.ts"
import { BeaconMetrics } from "../../src/BeaconMetrics.ts"
import type { BeaconMetricsService } from "../../src/BeaconMetrics.ts"
import * as BeaconServer from "../../src/BeaconServer.ts"
import type { BeaconConfig, BeaconHandle } from "../../src/BeaconServer.ts"

/** One pairing CA with a bridge leaf and a broker leaf. */
export interface Pairing {
  readonly caDer: Uint8Array
  readonly caPem: string
  readonly caKeyPem: string
  readonly infoHash: Uint8Array
  readonly bridge: { readonly leafDer: Uint8Array; readonly leafKey: string }
  readonly broker: { readonly leafDer: Uint8Array; readonly leafKey: string }
}

/** Makes a pairing CA and its two leaves. */
export const makePairing = (name = "test") =>
  Effect.gen(function*() {
    const ca = yield* makeCa({ commonName: `${name} ca` })
    const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: `${name} bridge` })
    const broker = yield* makeLeaf({ ca, role: "broker", commonName: `${name} broker` })
    return {
      caDer: ca.certDer,
      caPem: ca.certPem,
      caKeyPem: ca.keyPem,
      infoHash: infoHash(ca.certDer),
      bridge: { leafDer: bridge.certDer, leafKey: bridge.keyPem },
      broker: { leafDer: broker.certDer, leafKey: broker.keyPem }
    } satisfies Pairing
  }).pipe(Effect.orDie)

/** The beacon's own TLS certificate for 127.0.0.1, and the CA that issued it; made once per test file. */
export const beaconCertificate = Effect.runSync(Effect.cached(
  Effect.gen(function*() {
    const ca = yield* makeCa({ commonName: "beacon test ca" })
    const leaf = yield* makeLeaf({ ca, role: "server", commonName: "beacon", ipAddresses: ["127.0.0.1"] })
    return { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem }
  }).pipe(Effect.orDie)
))

/** Starts a beacon on 127.0.0.1 with a free port; short timeouts unless the test says otherwise. */
export const startBeacon = (overrides: Partial<BeaconConfig> = {}) =>
  Effect.gen(function*() {
    const certificate = yield* beaconCertificate
    return yield* BeaconServer.make({
      host: "127.0.0.1",
      port: 0,
      tls: { certPem: certificate.certPem, keyPem: certificate.keyPem },
      helloTimeoutMs: 2_000,
      pingIntervalMs: 1_000,
      drainDeadlineMs: 2_000,
      ...overrides
    })
  }).pipe(Effect.orDie)

/** Client options for one side of a pairing at a beacon. */
export const clientOptions = (
  beacon: BeaconHandle,
  pairing: Pairing,
  role: "bridge" | "broker",
  extra: Partial<ConnectOptions> = {}
): ConnectOptions => ({
  host: "127.0.0.1",
  port: beacon.address.port,
  rejectUnauthorized: false,
  role,
  caDer: pairing.caDer,
  leafDer: pairing[role].leafDer,
  leafKey: pairing[role].leafKey,
  infoHash: pairing.infoHash,
  maxWaitMs: 30_000,
  ...extra
})

/** A metrics double that records each call, in order. */
export interface RecordedMetrics extends BeaconMetricsService {
  readonly calls: Array<string>
  readonly refusals: Array<ErrorCodeName>
  readonly sessions: Array<{ readonly bridgeToBroker: number; readonly brokerToBridge: number }>
  readonly latencies: Array<number>
  /** Waiting clients by role, as the beacon reported them. */
  readonly waiting: { bridge: number; broker: number }
  /** Open connections, as the beacon reported them. */
  readonly open: { count: number }
}

/** A fresh metrics double and the layer that provides it. */
export const recordingMetrics = (): {
  readonly metrics: RecordedMetrics
  readonly layer: Layer.Layer<BeaconMetrics>
} => {
  const metrics: RecordedMetrics = {
    calls: [],
    refusals: [],
    sessions: [],
    latencies: [],
    waiting: { bridge: 0, broker: 0 },
    open: { count: 0 },
    connectionOpened: () => {
      metrics.calls.push("connectionOpened")
      metrics.open.count += 1
    },
    connectionClosed: () => {
      metrics.calls.push("connectionClosed")
      metrics.open.count -= 1
    },
    waitingChanged: (role, delta) => {
      metrics.calls.push(`waiting ${role} ${delta}`)
      metrics.waiting[role] += delta
    },
    sessionStarted: () => {
      metrics.calls.push("sessionStarted")
    },
    sessionEnded: (bridgeToBroker, brokerToBridge) => {
      metrics.calls.push("sessionEnded")
      metrics.sessions.push({ bridgeToBroker, brokerToBridge })
    },
    paired: (latencySeconds) => {
      metrics.latencies.push(latencySeconds)
    },
    refused: (code) => {
      metrics.refusals.push(code)
    },
    render: () => ""
  }
  return { metrics, layer: Layer.succeed(BeaconMetrics, metrics) }
}

/** Reads exactly `count` bytes from a paired socket. */
export const readBytes = (socket: Duplex, count: number): Effect.Effect<Buffer, Error> =>
  Effect.async<Buffer, Error>((resume) => {
    const chunks: Array<Buffer> = []
    let received = 0
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received >= count) {
        cleanup()
        const all = Buffer.concat(chunks)
        if (all.length > count) socket.unshift(all.subarray(count))
        resume(Effect.succeed(all.subarray(0, count)))
      }
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.fail(new Error(`stream ended after ${received} of ${count} bytes`)))
    }
    const onError = (error: Error) => {
      cleanup()
      resume(Effect.fail(error))
    }
    const cleanup = () => {
      socket.pause()
      socket.removeListener("data", onData)
      socket.removeListener("end", onEnd)
      socket.removeListener("error", onError)
    }
    socket.on("data", onData)
    socket.on("end", onEnd)
    socket.on("error", onError)
    socket.resume()
    return Effect.sync(cleanup)
  })

/** Reads a stream to its end and returns the byte count and SHA-256 of what came. */
export const drainToHash = (
  socket: Duplex
): Effect.Effect<{ readonly bytes: number; readonly sha256: string }, Error> =>
  Effect.async((resume) => {
    const hash = createHash("sha256")
    let bytes = 0
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    socket.once("end", () => resume(Effect.succeed({ bytes, sha256: hash.digest("hex") })))
    socket.once("error", (error) => resume(Effect.fail(error)))
    socket.resume()
  })

/** Resolves when the socket has closed. */
export const closed = (socket: Duplex): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.destroyed && socket.closed) return resume(Effect.void)
    socket.once("close", () => resume(Effect.void))
    socket.resume()
  })

/** Resolves when the stream has ended or closed, whichever comes first. */
export const endedOrClosed = (socket: Duplex): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.readableEnded || socket.closed) return resume(Effect.void)
    socket.once("end", () => resume(Effect.void))
    socket.once("close", () => resume(Effect.void))
    socket.resume()
  })

/** Polls a condition every few milliseconds until it holds. */
export const eventually = (condition: () => boolean): Effect.Effect<void> =>
  Effect.suspend(() => condition() ? Effect.void : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("5 millis")),
    Effect.orDie
  )

/** A tracer that keeps every span it makes, so tests can read names, parents and attributes. */
export const recordingTracer = Effect.gen(function*() {
  const native = yield* Effect.tracer
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = native.span(name, parent, context, links, startTime, kind, options)
      spans.push(span)
      return span
    },
    context: (f, fiber) => native.context(f, fiber)
  })
  return { spans, tracer }
})
