/**
 * The beacon's counters as plain numbers, and their rendering in the Prometheus text exposition format (0.0.4).
 */
import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { ErrorCode } from "@cloudtaser/protocol/ErrorCode"

/** The error names of the beacon protocol, in code order; every refusal carries one of them. */
export const refusalCodes: ReadonlyArray<ErrorCodeName> = (Object.keys(ErrorCode) as Array<ErrorCodeName>)
  .sort((a, b) => ErrorCode[a] - ErrorCode[b])

/** Upper bounds of the pairing latency buckets, in seconds: from half a millisecond to ten seconds. */
export const pairingLatencyBuckets: ReadonlyArray<number> = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10
]

/** The mutable state behind `BeaconMetrics.Default`; every update is a few number operations. */
export interface Counters {
  connectionsOpen: number
  connectionsTotal: number
  waitingBridge: number
  waitingBroker: number
  sessionsActive: number
  sessionsTotal: number
  bytesBridgeToBroker: number
  bytesBrokerToBridge: number
  readonly latencyBuckets: Array<number>
  latencyCount: number
  latencySum: number
  readonly refusals: Map<ErrorCodeName, number>
}

/** Fresh counters, all zero. */
export const makeCounters = (): Counters => ({
  connectionsOpen: 0,
  connectionsTotal: 0,
  waitingBridge: 0,
  waitingBroker: 0,
  sessionsActive: 0,
  sessionsTotal: 0,
  bytesBridgeToBroker: 0,
  bytesBrokerToBridge: 0,
  latencyBuckets: pairingLatencyBuckets.map(() => 0),
  latencyCount: 0,
  latencySum: 0,
  refusals: new Map(refusalCodes.map((code) => [code, 0]))
})

/** Records one pairing latency into the histogram; the buckets are stored non-cumulative and summed on render. */
export const observeLatency = (counters: Counters, seconds: number): void => {
  const value = Number.isFinite(seconds) && seconds > 0 ? seconds : 0
  counters.latencyCount += 1
  counters.latencySum += value
  const index = pairingLatencyBuckets.findIndex((bound) => value <= bound)
  if (index >= 0) counters.latencyBuckets[index] += 1
}

const prefix = "cloudtaser_beacon_"

const header = (name: string, type: "counter" | "gauge" | "histogram", help: string): string =>
  `# HELP ${prefix}${name} ${help}\n# TYPE ${prefix}${name} ${type}\n`

const sample = (name: string, value: number, labels?: Readonly<Record<string, string>>): string => {
  const rendered = labels === undefined
    ? ""
    : `{${Object.entries(labels).map(([key, label]) => `${key}="${label}"`).join(",")}}`
  return `${prefix}${name}${rendered} ${formatValue(value)}\n`
}

const formatValue = (value: number): string =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

/** Renders every metric, including those still at zero, so that a scrape always sees the full label set. */
export const render = (counters: Counters): string => {
  let text = header("connections_open", "gauge", "TLS connections currently open to the beacon.") +
    sample("connections_open", counters.connectionsOpen) +
    header("connections_total", "counter", "TLS connections accepted since the beacon started.") +
    sample("connections_total", counters.connectionsTotal) +
    header("waiting_clients", "gauge", "Clients that sent a valid HELLO and wait for a peer, by role.") +
    sample("waiting_clients", counters.waitingBridge, { role: "bridge" }) +
    sample("waiting_clients", counters.waitingBroker, { role: "broker" }) +
    header("sessions_active", "gauge", "Paired sessions currently relaying bytes.") +
    sample("sessions_active", counters.sessionsActive) +
    header("sessions_total", "counter", "Sessions paired since the beacon started.") +
    sample("sessions_total", counters.sessionsTotal) +
    header("relayed_bytes_total", "counter", "Bytes relayed between paired clients, by direction.") +
    sample("relayed_bytes_total", counters.bytesBridgeToBroker, { direction: "bridge_to_broker" }) +
    sample("relayed_bytes_total", counters.bytesBrokerToBridge, { direction: "broker_to_bridge" }) +
    header("pairing_latency_seconds", "histogram", "Time taken to pair a client with its peer, in seconds.")
  let cumulative = 0
  pairingLatencyBuckets.forEach((bound, index) => {
    cumulative += counters.latencyBuckets[index]
    text += sample("pairing_latency_seconds_bucket", cumulative, { le: String(bound) })
  })
  text += sample("pairing_latency_seconds_bucket", counters.latencyCount, { le: "+Inf" }) +
    sample("pairing_latency_seconds_sum", counters.latencySum) +
    sample("pairing_latency_seconds_count", counters.latencyCount) +
    header("refusals_total", "counter", "Connections refused with a protocol ERROR, by error code.")
  for (const code of refusalCodes) {
    text += sample("refusals_total", counters.refusals.get(code) ?? 0, { code })
  }
  return text
}
