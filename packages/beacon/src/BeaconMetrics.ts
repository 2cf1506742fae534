/**
 * What the beacon counts about itself (connections, waiting clients, sessions, bytes, pairing latency, refusals),
 * updated synchronously from the hot path and rendered for Prometheus on `/metrics`.
 */
import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { Context, Layer } from "effect"
import type { Counters } from "./internal/metrics.ts"
import { makeCounters, observeLatency, render } from "./internal/metrics.ts"

/** The role a waiting client announced in its HELLO. */
export type WaitingRole = "bridge" | "broker"

/**
 * The beacon's metrics. Every method is a plain synchronous call, cheap enough for each frame and each relayed
 * chunk; labels carry only bounded values (role, direction, error code), never an info hash or an address.
 */
export interface BeaconMetricsService {
  /** A TLS connection was accepted. */
  readonly connectionOpened: () => void
  /** A TLS connection closed, for whatever reason. */
  readonly connectionClosed: () => void
  /** A client of `role` started (`1`) or stopped (`-1`) waiting for a peer. */
  readonly waitingChanged: (role: WaitingRole, delta: 1 | -1) => void
  /** Two clients were paired and their relay started. */
  readonly sessionStarted: () => void
  /** A relay ended after copying these many bytes in each direction. */
  readonly sessionEnded: (bytesBridgeToBroker: number, bytesBrokerToBridge: number) => void
  /** A client was paired this many seconds after its HELLO was accepted. */
  readonly paired: (latencySeconds: number) => void
  /** A client was sent an ERROR with this code and closed. */
  readonly refused: (code: ErrorCodeName) => void
  /** Every metric in the Prometheus text exposition format, version 0.0.4. */
  readonly render: () => string
}

/** Makes live metrics backed by plain numbers. */
export const make = (): BeaconMetricsService => {
  const counters: Counters = makeCounters()
  return {
    connectionOpened: () => {
      counters.connectionsOpen += 1
      counters.connectionsTotal += 1
    },
    connectionClosed: () => {
      counters.connectionsOpen -= 1
    },
    waitingChanged: (role, delta) => {
      if (role === "bridge") counters.waitingBridge += delta
      else counters.waitingBroker += delta
    },
    sessionStarted: () => {
      counters.sessionsActive += 1
      counters.sessionsTotal += 1
    },
    sessionEnded: (bytesBridgeToBroker, bytesBrokerToBridge) => {
      counters.sessionsActive -= 1
      counters.bytesBridgeToBroker += bytesBridgeToBroker
      counters.bytesBrokerToBridge += bytesBrokerToBridge
    },
    paired: (latencySeconds) => observeLatency(counters, latencySeconds),
    refused: (code) => {
      const current = counters.refusals.get(code)
      // A name outside the protocol's list would be an unbounded label: count it as internal instead.
      if (current === undefined) counters.refusals.set("internal", (counters.refusals.get("internal") ?? 0) + 1)
      else counters.refusals.set(code, current + 1)
    },
    render: () => render(counters)
  }
}

const noop: BeaconMetricsService = {
  connectionOpened: () => {},
  connectionClosed: () => {},
  waitingChanged: () => {},
  sessionStarted: () => {},
  sessionEnded: () => {},
  paired: () => {},
  refused: () => {},
  render: () => ""
}

/** The beacon's metrics service. */
export class BeaconMetrics extends Context.Tag("@cloudtaser/beacon/BeaconMetrics")<
  BeaconMetrics,
  BeaconMetricsService
>() {
  /** Live counters, one set per layer build. */
  static readonly Default: Layer.Layer<BeaconMetrics> = Layer.sync(BeaconMetrics, make)
  /** Counts nothing and renders nothing: for tests and embeddings that do not expose metrics. */
  static readonly Noop: Layer.Layer<BeaconMetrics> = Layer.succeed(BeaconMetrics, noop)
}
