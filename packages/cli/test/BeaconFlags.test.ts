import { describe, expect, it } from "@effect/vitest"
import { FastCheck, Option } from "effect"
import { formatDuration, parseDuration } from "../src/commands/Beacon.ts"
import { formatAddress, parseAddress } from "../src/ListenAddress.ts"

describe("beacon flags", () => {
  it("reads addresses as host:port, with :port meaning every interface", () => {
    expect(parseAddress(":443")).toEqual(Option.some({ host: "0.0.0.0", port: 443 }))
    expect(parseAddress("127.0.0.1:0")).toEqual(Option.some({ host: "127.0.0.1", port: 0 }))
    expect(parseAddress("beacon.example.com:8443")).toEqual(Option.some({ host: "beacon.example.com", port: 8443 }))
    expect(parseAddress("[::]:443")).toEqual(Option.some({ host: "::", port: 443 }))
    expect(parseAddress("[2001:db8::1]:9090")).toEqual(Option.some({ host: "2001:db8::1", port: 9090 }))
    for (const bad of ["443", "host:", "host:99999", "::1:443", "host:port", ""]) {
      expect(parseAddress(bad)).toEqual(Option.none())
    }
  })

  it("writes IPv6 hosts in brackets so that the port stays readable", () => {
    expect(formatAddress({ host: "::", port: 443 })).toBe("[::]:443")
    expect(formatAddress({ host: "127.0.0.1", port: 9090 })).toBe("127.0.0.1:9090")
  })

  it("reads durations with units, and bare numbers as milliseconds", () => {
    expect(parseDuration("500ms")).toEqual(Option.some(500))
    expect(parseDuration("10s")).toEqual(Option.some(10_000))
    expect(parseDuration("5m")).toEqual(Option.some(300_000))
    expect(parseDuration("1h")).toEqual(Option.some(3_600_000))
    expect(parseDuration("1m30s")).toEqual(Option.some(90_000))
    expect(parseDuration("1.5s")).toEqual(Option.some(1_500))
    expect(parseDuration("2500")).toEqual(Option.some(2_500))
    for (const bad of ["", "soon", "10 s", "-5s", "5d", "s"]) {
      expect(parseDuration(bad)).toEqual(Option.none())
    }
  })

  it.prop(
    "a formatted duration reads back as the same number of milliseconds",
    [FastCheck.integer({ min: 0, max: 7 * 24 * 3_600_000 })],
    ([ms]) => {
      expect(parseDuration(formatDuration(ms))).toEqual(Option.some(ms))
    }
  )
})
