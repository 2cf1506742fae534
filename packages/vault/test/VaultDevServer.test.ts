import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as VaultDevServer from "../src/VaultDevServer.ts"

const rootToken = "root-token-for-tests"

const call = (url: string, method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/v1/${path}`, {
      method,
      headers: {
        ...(options.token === undefined ? {} : { "X-Vault-Token": options.token }),
        ...(options.body === undefined ? {} : { "Content-Type": "application/json" })
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
    })
    const text = await response.text()
    return { status: response.status, body: text.length === 0 ? undefined : JSON.parse(text) }
  })

describe("VaultDevServer", () => {
  it.scoped("serves sys/health, KV v2 and the root token (api-docs: system/health, secret/kv/kv-v2)", () =>
    Effect.gen(function*() {
      const server = yield* VaultDevServer.start({ rootToken })
      const health = yield* call(server.url, "GET", "sys/health")
      expect(health.status).toBe(200)
      expect(health.body).toMatchObject({ initialized: true, sealed: false, standby: false })
      const written = yield* call(server.url, "POST", "secret/data/app", {
        token: rootToken,
        body: { data: { a: "1" } }
      })
      expect(written.status).toBe(200)
      expect(written.body.data).toMatchObject({ version: 1, destroyed: false, deletion_time: "" })
      const read = yield* call(server.url, "GET", "secret/data/app", { token: rootToken })
      expect(read.status).toBe(200)
      expect(read.body.data.data).toEqual({ a: "1" })
      const denied = yield* call(server.url, "GET", "secret/data/app", { token: "nope" })
      expect(denied).toEqual({ status: 403, body: { errors: ["permission denied"] } })
    }))
})
