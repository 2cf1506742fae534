import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const bin = (name: string) => fileURLToPath(new URL(`../bin/${name}.js`, import.meta.url))

describe("entry points", () => {
  it("cloudtaser --help runs on this Node.js and describes the program", () => {
    const result = spawnSync(process.execPath, [bin("cloudtaser"), "--help"], { encoding: "utf8" })
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("CloudTaser connectivity")
  })

  // The machine's own Node.js may be older than 24; when it is, the entry point must say so instead of crashing.
  const systemNode = "/usr/bin/node"
  const systemMajor = existsSync(systemNode)
    ? Number(spawnSync(systemNode, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout.split(".")[0])
    : undefined
  it.skipIf(systemMajor === undefined || systemMajor >= 24)("an older Node.js gets a message naming Node.js 24", () => {
    const result = spawnSync(systemNode, [bin("cloudtaser"), "--help"], { encoding: "utf8" })
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("needs Node.js 24 or later")
    expect(result.stderr).toContain("npm ci")
  })
})
