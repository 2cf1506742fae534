import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const demo = fileURLToPath(new URL("../../../scripts/demo.ts", import.meta.url))

describe("npm run demo", () => {
  it("pairs a bridge and a broker through a beacon, delivers both messages and prints the session span", () => {
    const result = spawnSync(process.execPath, [demo], { encoding: "utf8", timeout: 60_000 })
    expect(result.stderr).not.toContain("demo failed")
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("bridge received: hello bridge, this is the broker")
    expect(result.stdout).toContain("broker received: hello broker, this is the bridge")
    expect(result.stdout).toContain("the bridge was paired after waiting, the broker without waiting")
    expect(result.stdout).toMatch(/span "beacon\.session" \(trace 4bf92f35…\)/)
    expect(result.stdout).toMatch(/beacon\.bytes_broker_to_bridge = 32/)
  })
})
