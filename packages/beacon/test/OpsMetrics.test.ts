import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck } from "effect"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import * as Metrics from "../src/BeaconMetrics.ts"

/** The samples of a Prometheus text exposition, keyed by name and labels as written. */
const samples = (text: string): Map<string, number> => {
  const result = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const space = line.lastIndexOf(" ")
    result.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return result
}

const bucketCounts = (text: string): Array<[string, number]> =>
  Array.from(samples(text)).filter(([key]) => key.startsWith("cloudtaser_beacon_pairing_latency_seconds_bucket"))

describe("BeaconMetrics", () => {
  it("renders every metric at zero, with HELP and TYPE, before anything happened", () => {
    const text = Metrics.make().render()
    const values = samples(text)
    expect(values.get("cloudtaser_beacon_connections_open")).toBe(0)
    expect(values.get("cloudtaser_beacon_sessions_total")).toBe(0)
    expect(values.get("cloudtaser_beacon_waiting_clients{role=\"broker\"}")).toBe(0)
    expect(values.get("cloudtaser_beacon_refusals_total{code=\"capacity\"}")).toBe(0)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"+Inf\"}")).toBe(0)
    for (const name of Array.from(values.keys(), (key) => key.replace(/\{.*$/, ""))) {
      const family = name.replace(/_(bucket|sum|count)$/, "")
      expect(text).toContain(`# TYPE ${family} `)
      expect(text).toContain(`# HELP ${family} `)
    }
    expect(text.endsWith("\n")).toBe(true)
  })

  it("keeps gauges and counters apart: closing lowers what is open, not what was accepted", () => {
    const metrics = Metrics.make()
    metrics.connectionOpened()
    metrics.connectionOpened()
    metrics.connectionClosed()
    metrics.waitingChanged("broker", 1)
    metrics.waitingChanged("broker", 1)
    metrics.waitingChanged("broker", -1)
    metrics.sessionStarted()
    metrics.sessionStarted()
    metrics.sessionEnded(10, 20)
    metrics.sessionEnded(5, 1)
    metrics.refused("capacity")
    metrics.refused("capacity")
    metrics.refused("hello_timeout")
    const values = samples(metrics.render())
    expect(values.get("cloudtaser_beacon_connections_open")).toBe(1)
    expect(values.get("cloudtaser_beacon_connections_total")).toBe(2)
    expect(values.get("cloudtaser_beacon_waiting_clients{role=\"broker\"}")).toBe(1)
    expect(values.get("cloudtaser_beacon_waiting_clients{role=\"bridge\"}")).toBe(0)
    expect(values.get("cloudtaser_beacon_sessions_active")).toBe(0)
    expect(values.get("cloudtaser_beacon_sessions_total")).toBe(2)
    expect(values.get("cloudtaser_beacon_relayed_bytes_total{direction=\"bridge_to_broker\"}")).toBe(15)
    expect(values.get("cloudtaser_beacon_relayed_bytes_total{direction=\"broker_to_bridge\"}")).toBe(21)
    expect(values.get("cloudtaser_beacon_refusals_total{code=\"capacity\"}")).toBe(2)
    expect(values.get("cloudtaser_beacon_refusals_total{code=\"hello_timeout\"}")).toBe(1)
  })

  it("counts a code outside the protocol's list as internal rather than adding a label value", () => {
    const metrics = Metrics.make()
    metrics.refused("0123456789abcdef0123" as ErrorCodeName)
    const text = metrics.render()
    expect(text).not.toContain("0123456789abcdef")
    expect(samples(text).get("cloudtaser_beacon_refusals_total{code=\"internal\"}")).toBe(1)
  })

  it("places pairing latencies in buckets from half a millisecond to ten seconds", () => {
    const metrics = Metrics.make()
    metrics.paired(0.0004)
    metrics.paired(0.002)
    metrics.paired(3)
    metrics.paired(60)
    const values = samples(metrics.render())
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"0.0005\"}")).toBe(1)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"0.0025\"}")).toBe(2)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"2.5\"}")).toBe(2)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"5\"}")).toBe(3)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"10\"}")).toBe(3)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_bucket{le=\"+Inf\"}")).toBe(4)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_count")).toBe(4)
    expect(values.get("cloudtaser_beacon_pairing_latency_seconds_sum")).toBeCloseTo(63.0024, 6)
  })

  it.prop(
    "histogram buckets are cumulative and the +Inf bucket equals the count",
    [FastCheck.array(FastCheck.double({ min: 0, max: 30, noNaN: true }), { maxLength: 200 })],
    ([latencies]) => {
      const metrics = Metrics.make()
      latencies.forEach(metrics.paired)
      const buckets = bucketCounts(metrics.render()).map(([, count]) => count)
      buckets.slice(1).forEach((count, index) => expect(count).toBeGreaterThanOrEqual(buckets[index]))
      expect(buckets.at(-1)).toBe(latencies.length)
    }
  )

  it.effect("the Noop layer counts and renders nothing; each Default build has its own counters", () =>
    Effect.gen(function*() {
      const noop = yield* Effect.provide(BeaconMetrics, BeaconMetrics.Noop)
      noop.connectionOpened()
      expect(noop.render()).toBe("")
      const first = yield* Effect.provide(BeaconMetrics, BeaconMetrics.Default)
      const second = yield* Effect.provide(BeaconMetrics, BeaconMetrics.Default)
      first.connectionOpened()
      expect(samples(first.render()).get("cloudtaser_beacon_connections_total")).toBe(1)
      expect(samples(second.render()).get("cloudtaser_beacon_connections_total")).toBe(0)
    }))
})
