import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as VaultDevServer from "../src/VaultDevServer.ts"
import { call, rawExchange } from "./VaultDevServerSupport.ts"

const rootToken = "root-token-for-tests"

/** A table row: one request and what Vault's API docs say it answers. */
interface Row {
  readonly name: string
  readonly method: string
  readonly path: string
  readonly token?: string | undefined
  readonly body?: unknown
  readonly status: number
  readonly expect?: unknown
}

const runTable = (url: string, rows: ReadonlyArray<Row>) =>
  Effect.forEach(rows, (row) =>
    Effect.gen(function*() {
      const reply = yield* call(url, row.method, row.path, {
        ...(row.token === undefined ? {} : { token: row.token }),
        ...(row.body === undefined ? {} : { body: row.body })
      })
      expect({ row: row.name, status: reply.status }).toEqual({ row: row.name, status: row.status })
      if (row.expect !== undefined) expect(reply.body, row.name).toMatchObject(row.expect as object)
      return reply
    }), { discard: true })

const policy = (url: string, name: string, text: string) =>
  call(url, "PUT", `sys/policies/acl/${name}`, { token: rootToken, body: { policy: text } })

const tokenWith = (url: string, body: Record<string, unknown>, token: string = rootToken) =>
  call(url, "POST", "auth/token/create", { token, body }).pipe(Effect.map((reply) => {
    expect(reply.status).toBe(200)
    return reply.body.auth.client_token as string
  }))

describe("VaultDevServer: the envelope and errors (api-docs: index, HTTP status codes)", () => {
  it.scoped("answers in Vault's envelope and with Vault's error bodies", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const written = yield* call(url, "POST", "secret/data/a", { token: rootToken, body: { data: { k: "v" } } })
      expect(Object.keys(written.body).sort()).toEqual([
        "auth",
        "data",
        "lease_duration",
        "lease_id",
        "mount_type",
        "renewable",
        "request_id",
        "warnings",
        "wrap_info"
      ])
      expect(written.body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, mount_type: "kv" })
      yield* runTable(url, [
        {
          name: "no token",
          method: "GET",
          path: "secret/data/a",
          status: 403,
          expect: { errors: ["permission denied"] }
        },
        {
          name: "unknown token",
          method: "GET",
          path: "secret/data/a",
          token: "hvs.unknown",
          status: 403,
          expect: { errors: ["permission denied"] }
        },
        { name: "missing secret", method: "GET", path: "secret/data/none", token: rootToken, status: 404 },
        { name: "unsupported operation", method: "DELETE", path: "sys/health", token: rootToken, status: 405 },
        {
          name: "no mount",
          method: "GET",
          path: "nowhere/x",
          token: rootToken,
          status: 404,
          expect: { errors: ["no handler for route \"nowhere/x\". route entry not found."] }
        }
      ])
      const missing = yield* call(url, "GET", "secret/data/none", { token: rootToken })
      expect(missing.body).toEqual({ errors: [] })
      const badJson = yield* call(url, "PUT", "secret/data/a", { token: rootToken, rawBody: "{not json" })
      expect(badJson.status).toBe(400)
      expect(badJson.body.errors[0]).toMatch(/^failed to parse JSON input/)
      const badEncoding = yield* call(url, "GET", "secret/data/%E0%A4%A", { token: rootToken })
      expect(badEncoding.status).toBe(400)
      const outside = yield* call(url, "GET", "../healthz", {})
      expect(outside.status).toBe(404)
      const unknownMethod = yield* call(url, "PROPFIND", "secret/data/a", { token: rootToken })
      expect(unknownMethod.status).toBe(405)
      const wrapped = yield* call(url, "GET", "secret/data/a", {
        token: rootToken,
        headers: { "X-Vault-Wrap-TTL": "60s" }
      })
      expect(wrapped.status).toBe(400)
      expect(wrapped.body.errors[0]).toContain("X-Vault-Wrap-TTL")
      const reader = yield* tokenWith(url, { policies: ["default"] })
      const uiMount = yield* call(url, "GET", "sys/internal/ui/mounts/secret/a", { token: reader })
      expect(uiMount.status).toBe(200)
      expect(uiMount.body.data).toMatchObject({ path: "secret/", type: "kv", options: { version: "2" } })
      expect((yield* call(url, "GET", "sys/internal/ui/mounts/secret/a", {})).status).toBe(403)
      const bearer = yield* call(url, "GET", "secret/data/a", {
        headers: { Authorization: `Bearer ${rootToken}`, "X-Vault-Namespace": "team-a/" }
      })
      expect(bearer.status).toBe(200)
      expect(bearer.body.data.data).toEqual({ k: "v" })
    }))
})

describe("VaultDevServer: sys/health (api-docs: system/health)", () => {
  it.scoped("answers each state with its status code and honours the query overrides", () =>
    Effect.gen(function*() {
      const active = yield* VaultDevServer.start({ rootToken })
      const standby = yield* VaultDevServer.start({ rootToken, standby: true })
      const perf = yield* VaultDevServer.start({ rootToken, performanceStandby: true })
      const uninit = yield* VaultDevServer.start({ rootToken, uninitialized: true })
      const body = yield* call(active.url, "GET", "sys/health")
      expect(body).toMatchObject({
        status: 200,
        body: {
          initialized: true,
          sealed: false,
          standby: false,
          performance_standby: false,
          replication_dr_mode: "disabled",
          replication_performance_mode: "disabled"
        }
      })
      expect(typeof body.body.version).toBe("string")
      expect(typeof body.body.server_time_utc).toBe("number")
      const head = yield* call(active.url, "HEAD", "sys/health")
      expect(head).toEqual({ status: 200, body: undefined })
      const rows: Array<[string, string, number]> = [
        [active.url, "sys/health?activecode=218", 218],
        [standby.url, "sys/health", 429],
        [standby.url, "sys/health?standbyok=true", 200],
        [standby.url, "sys/health?standbyok=true&activecode=299", 299],
        [standby.url, "sys/health?standbycode=298", 298],
        [perf.url, "sys/health", 473],
        [perf.url, "sys/health?standbyok=true", 473],
        [perf.url, "sys/health?perfstandbyok=true", 200],
        [perf.url, "sys/health?performancestandbycode=297", 297],
        [uninit.url, "sys/health", 501],
        [uninit.url, "sys/health?uninitcode=296", 296]
      ]
      for (const [url, path, status] of rows) {
        const reply = yield* call(url, "GET", path)
        expect({ path, status: reply.status }).toEqual({ path, status })
      }
      const standbyBody = yield* call(standby.url, "GET", "sys/health")
      expect(standbyBody.body).toMatchObject({ standby: true, sealed: false })
      yield* active.seal()
      const sealed = yield* call(active.url, "GET", "sys/health")
      expect(sealed).toMatchObject({ status: 503, body: { sealed: true } })
      const sealedOverride = yield* call(active.url, "GET", "sys/health?sealedcode=200")
      expect(sealedOverride.status).toBe(200)
      const refused = yield* call(uninit.url, "GET", "secret/data/a", { token: rootToken })
      expect(refused.status).toBe(503)
    }))
})

describe("VaultDevServer: sealing (api-docs: system/seal, system/unseal, system/seal-status)", () => {
  it.scoped("refuses everything but the status endpoints while sealed", () =>
    Effect.gen(function*() {
      const server = yield* VaultDevServer.start({ rootToken })
      const { url } = server
      yield* call(url, "POST", "secret/data/a", { token: rootToken, body: { data: { k: "v" } } })
      const status = yield* call(url, "GET", "sys/seal-status")
      expect(status.body).toMatchObject({ type: "shamir", initialized: true, sealed: false, t: 1, n: 1, progress: 0 })
      const reader = yield* tokenWith(url, { policies: ["default"] })
      const notSudo = yield* call(url, "PUT", "sys/seal", { token: reader })
      expect(notSudo.status).toBe(403)
      const seal = yield* call(url, "PUT", "sys/seal", { token: rootToken })
      expect(seal).toEqual({ status: 204, body: undefined })
      yield* runTable(url, [
        {
          name: "read while sealed",
          method: "GET",
          path: "secret/data/a",
          token: rootToken,
          status: 503,
          expect: { errors: ["Vault is sealed"] }
        },
        { name: "login while sealed", method: "POST", path: "auth/token/lookup-self", token: rootToken, status: 503 },
        {
          name: "seal-status while sealed",
          method: "GET",
          path: "sys/seal-status",
          status: 200,
          expect: { sealed: true }
        },
        { name: "health while sealed", method: "GET", path: "sys/health", status: 503 },
        { name: "wrong unseal key", method: "PUT", path: "sys/unseal", body: { key: "AAAA" }, status: 400 },
        {
          name: "unseal",
          method: "PUT",
          path: "sys/unseal",
          body: { key: server.unsealKey },
          status: 200,
          expect: { sealed: false }
        },
        { name: "read after unseal", method: "GET", path: "secret/data/a", token: rootToken, status: 200 }
      ])
      yield* server.seal()
      expect((yield* call(url, "GET", "secret/data/a", { token: rootToken })).status).toBe(503)
      yield* server.unseal()
      expect((yield* call(url, "GET", "secret/data/a", { token: rootToken })).body.data.data).toEqual({ k: "v" })
    }))
})

describe("VaultDevServer: KV version 2 (api-docs: secret/kv/kv-v2)", () => {
  it.scoped("writes and reads versions, with check-and-set", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const t = rootToken
      yield* runTable(url, [
        {
          name: "first write",
          method: "POST",
          path: "secret/data/app/db",
          token: t,
          body: { data: { user: "a" } },
          status: 200,
          expect: { data: { version: 1, destroyed: false, deletion_time: "", custom_metadata: null } }
        },
        {
          name: "write with matching cas",
          method: "PUT",
          path: "secret/data/app/db",
          token: t,
          body: { options: { cas: 1 }, data: { user: "b" } },
          status: 200,
          expect: { data: { version: 2 } }
        },
        {
          name: "write with stale cas",
          method: "POST",
          path: "secret/data/app/db",
          token: t,
          body: { options: { cas: 1 }, data: { user: "c" } },
          status: 400,
          expect: { errors: ["check-and-set parameter did not match the current version"] }
        },
        {
          name: "cas 0 on an existing key",
          method: "POST",
          path: "secret/data/app/db",
          token: t,
          body: { options: { cas: 0 }, data: { user: "c" } },
          status: 400
        },
        {
          name: "cas 0 on a new key",
          method: "POST",
          path: "secret/data/app/new",
          token: t,
          body: { options: { cas: 0 }, data: { x: 1 } },
          status: 200
        },
        {
          name: "write without data",
          method: "POST",
          path: "secret/data/app/db",
          token: t,
          body: { options: {} },
          status: 400,
          expect: { errors: ["no data provided"] }
        },
        {
          name: "read latest",
          method: "GET",
          path: "secret/data/app/db",
          token: t,
          status: 200,
          expect: { data: { data: { user: "b" }, metadata: { version: 2, destroyed: false, deletion_time: "" } } }
        },
        {
          name: "read version 1",
          method: "GET",
          path: "secret/data/app/db?version=1",
          token: t,
          status: 200,
          expect: { data: { data: { user: "a" }, metadata: { version: 1 } } }
        },
        {
          name: "read a version never written",
          method: "GET",
          path: "secret/data/app/db?version=9",
          token: t,
          status: 404
        },
        {
          name: "require cas on the key",
          method: "POST",
          path: "secret/metadata/app/db",
          token: t,
          body: { cas_required: true },
          status: 204
        },
        {
          name: "write without cas when required",
          method: "POST",
          path: "secret/data/app/db",
          token: t,
          body: { data: { user: "d" } },
          status: 400,
          expect: { errors: ["check-and-set parameter required for this call"] }
        },
        {
          name: "write with cas when required",
          method: "POST",
          path: "secret/data/app/db",
          token: t,
          body: { options: { cas: 2 }, data: { user: "d" } },
          status: 200,
          expect: { data: { version: 3 } }
        }
      ])
    }))

  it.scoped("soft-deletes, undeletes and destroys versions", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const t = rootToken
      for (const n of [1, 2, 3]) yield* call(url, "POST", "secret/data/s", { token: t, body: { data: { n } } })
      yield* runTable(url, [
        { name: "delete latest", method: "DELETE", path: "secret/data/s", token: t, status: 204 },
        {
          name: "read deleted latest",
          method: "GET",
          path: "secret/data/s",
          token: t,
          status: 404,
          expect: { data: { data: null, metadata: { version: 3, destroyed: false } } }
        },
        { name: "older version still readable", method: "GET", path: "secret/data/s?version=2", token: t, status: 200 },
        {
          name: "undelete without versions",
          method: "POST",
          path: "secret/undelete/s",
          token: t,
          body: {},
          status: 400,
          expect: { errors: ["no version number provided"] }
        },
        {
          name: "undelete 3",
          method: "POST",
          path: "secret/undelete/s",
          token: t,
          body: { versions: [3] },
          status: 204
        },
        {
          name: "read undeleted",
          method: "GET",
          path: "secret/data/s",
          token: t,
          status: 200,
          expect: { data: { data: { n: 3 }, metadata: { deletion_time: "" } } }
        },
        {
          name: "delete 1 and 2",
          method: "POST",
          path: "secret/delete/s",
          token: t,
          body: { versions: [1, 2] },
          status: 204
        },
        { name: "read deleted 1", method: "GET", path: "secret/data/s?version=1", token: t, status: 404 },
        {
          name: "destroy 2 and 3",
          method: "PUT",
          path: "secret/destroy/s",
          token: t,
          body: { versions: [2, 3] },
          status: 204
        },
        {
          name: "read destroyed",
          method: "GET",
          path: "secret/data/s",
          token: t,
          status: 404,
          expect: { data: { data: null, metadata: { destroyed: true, version: 3 } } }
        },
        {
          name: "undelete destroyed",
          method: "POST",
          path: "secret/undelete/s",
          token: t,
          body: { versions: [3] },
          status: 204
        },
        { name: "destroyed stays destroyed", method: "GET", path: "secret/data/s", token: t, status: 404 },
        {
          name: "undelete 1",
          method: "POST",
          path: "secret/undelete/s",
          token: t,
          body: { versions: "1" },
          status: 204
        },
        {
          name: "read undeleted 1",
          method: "GET",
          path: "secret/data/s?version=1",
          token: t,
          status: 200,
          expect: { data: { data: { n: 1 } } }
        }
      ])
      const metadata = yield* call(url, "GET", "secret/metadata/s", { token: t })
      expect(metadata.status).toBe(200)
      expect(metadata.body.data).toMatchObject({
        current_version: 3,
        oldest_version: 1,
        max_versions: 0,
        cas_required: false
      })
      expect(metadata.body.data.versions["1"]).toMatchObject({ destroyed: false, deletion_time: "" })
      expect(metadata.body.data.versions["2"]).toMatchObject({ destroyed: true })
      expect(metadata.body.data.versions["3"]).toMatchObject({ destroyed: true })
      const removed = yield* call(url, "DELETE", "secret/metadata/s", { token: t })
      expect(removed.status).toBe(204)
      expect((yield* call(url, "GET", "secret/data/s?version=1", { token: t })).status).toBe(404)
      expect((yield* call(url, "GET", "secret/metadata/s", { token: t })).status).toBe(404)
    }))

  it.scoped("keeps max_versions, custom metadata, mount config and merge patches", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const t = rootToken
      const meta = yield* call(url, "POST", "secret/metadata/m", {
        token: t,
        body: { max_versions: 2, custom_metadata: { owner: "team-a" } }
      })
      expect(meta.status).toBe(204)
      for (const n of [1, 2, 3]) {
        yield* call(url, "POST", "secret/data/m", { token: t, body: { data: { n, keep: "x" } } })
      }
      expect((yield* call(url, "GET", "secret/data/m?version=1", { token: t })).status).toBe(404)
      const latest = yield* call(url, "GET", "secret/data/m", { token: t })
      expect(latest.body.data.metadata).toMatchObject({ version: 3, custom_metadata: { owner: "team-a" } })
      const metadata = yield* call(url, "GET", "secret/metadata/m", { token: t })
      expect(metadata.body.data).toMatchObject({ max_versions: 2, oldest_version: 2, current_version: 3 })
      expect(Object.keys(metadata.body.data.versions).sort()).toEqual(["2", "3"])
      yield* call(url, "POST", "secret/data/nested", { token: t, body: { data: { a: { b: { c: 1 } }, d: 2 } } })
      const subkeys = yield* call(url, "GET", "secret/subkeys/nested", { token: t })
      expect(subkeys.body.data).toMatchObject({ subkeys: { a: { b: { c: null } }, d: null }, metadata: { version: 1 } })
      const shallow = yield* call(url, "GET", "secret/subkeys/nested?depth=1", { token: t })
      expect(shallow.body.data.subkeys).toEqual({ a: null, d: null })
      const wrongType = yield* call(url, "PATCH", "secret/data/m", { token: t, body: { data: { n: 4 } } })
      expect(wrongType.status).toBe(415)
      const patched = yield* call(url, "PATCH", "secret/data/m", {
        token: t,
        body: { data: { n: 4, keep: null, added: "y" } },
        headers: { "Content-Type": "application/merge-patch+json" }
      })
      expect(patched.status).toBe(200)
      expect((yield* call(url, "GET", "secret/data/m", { token: t })).body.data.data).toEqual({ n: 4, added: "y" })
      yield* runTable(url, [
        {
          name: "config default",
          method: "GET",
          path: "secret/config",
          token: t,
          status: 200,
          expect: { data: { cas_required: false, max_versions: 0, delete_version_after: "0s" } }
        },
        {
          name: "config write",
          method: "POST",
          path: "secret/config",
          token: t,
          body: { cas_required: true, max_versions: 5, delete_version_after: "1h" },
          status: 204
        },
        {
          name: "config read back",
          method: "GET",
          path: "secret/config",
          token: t,
          status: 200,
          expect: { data: { cas_required: true, max_versions: 5, delete_version_after: "1h0m0s" } }
        },
        {
          name: "mount-wide cas",
          method: "POST",
          path: "secret/data/other",
          token: t,
          body: { data: { a: 1 } },
          status: 400,
          expect: { errors: ["check-and-set parameter required for this call"] }
        },
        {
          name: "old KV v1 path on a v2 mount",
          method: "GET",
          path: "secret/m",
          token: t,
          status: 404
        }
      ])
    }))

  it.effect("lets versions expire after delete_version_after, by the clock", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      yield* call(url, "POST", "secret/metadata/short", { token: rootToken, body: { delete_version_after: "30s" } })
      yield* call(url, "POST", "secret/data/short", { token: rootToken, body: { data: { a: 1 } } })
      const fresh = yield* call(url, "GET", "secret/data/short", { token: rootToken })
      expect(fresh.status).toBe(200)
      expect(fresh.body.data.metadata.deletion_time).not.toBe("")
      yield* TestClock.adjust("31 seconds")
      const expired = yield* call(url, "GET", "secret/data/short", { token: rootToken })
      expect(expired.status).toBe(404)
      expect(expired.body.data.data).toBeNull()
    }).pipe(Effect.scoped))
})

describe("VaultDevServer: listing (api-docs: secret/kv/kv-v2 list, index LIST)", () => {
  it.scoped("answers LIST and GET ?list=true with keys and folders", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      for (const key of ["top", "app/db", "app/cache", "app/deep/one", "other/x"]) {
        yield* call(url, "POST", `secret/data/${key}`, { token: rootToken, body: { data: { k: key } } })
      }
      yield* runTable(url, [
        {
          name: "LIST the root",
          method: "LIST",
          path: "secret/metadata/",
          token: rootToken,
          status: 200,
          expect: { data: { keys: ["app/", "other/", "top"] } }
        },
        {
          name: "LIST a folder without a trailing slash",
          method: "LIST",
          path: "secret/metadata/app",
          token: rootToken,
          status: 200,
          expect: { data: { keys: ["cache", "db", "deep/"] } }
        },
        {
          name: "GET ?list=true",
          method: "GET",
          path: "secret/metadata/app/?list=true",
          token: rootToken,
          status: 200,
          expect: { data: { keys: ["cache", "db", "deep/"] } }
        },
        { name: "LIST an empty folder", method: "LIST", path: "secret/metadata/none/", token: rootToken, status: 404 },
        { name: "LIST on the data path", method: "LIST", path: "secret/data/app/", token: rootToken, status: 405 },
        {
          name: "LIST policies",
          method: "LIST",
          path: "sys/policies/acl",
          token: rootToken,
          status: 200,
          expect: { data: { keys: ["default", "root"] } }
        }
      ])
    }))

  it.scoped("reads LIST after a request with a body on the same connection", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const body = JSON.stringify({ data: { k: "LIST /v1/secret/metadata/ HTTP/1.1\r\n\r\n" } })
      const chunked = JSON.stringify({ data: { k: "second" } })
      const host = new URL(url).host
      const raw = [
        `POST /v1/secret/data/one HTTP/1.1\r\nHost: ${host}\r\nX-Vault-Token: ${rootToken}\r\n`,
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        `POST /v1/secret/data/two HTTP/1.1\r\nHost: ${host}\r\nX-Vault-Token: ${rootToken}\r\n`,
        `Transfer-Encoding: chunked\r\n\r\n${chunked.length.toString(16)}\r\n${chunked}\r\n0\r\n\r\n`,
        `LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: ${host}\r\nX-Vault-Token: ${rootToken}\r\n`,
        "Connection: close\r\n\r\n"
      ].join("")
      const answer = yield* rawExchange(url, raw)
      const statuses = Array.from(answer.matchAll(/HTTP\/1\.1 (\d{3})/g), (match) => match[1])
      expect(statuses).toEqual(["200", "200", "200"])
      expect(answer).toContain("{\"keys\":[\"one\",\"two\"]}")
    }))
})

describe("VaultDevServer: mounts (api-docs: system/mounts)", () => {
  it.scoped("lists, enables and disables secrets engines", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const listed = yield* call(url, "GET", "sys/mounts", { token: rootToken })
      expect(listed.status).toBe(200)
      expect(listed.body.data["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } })
      expect(listed.body["secret/"]).toMatchObject({ type: "kv" })
      yield* runTable(url, [
        {
          name: "enable KV v2",
          method: "POST",
          path: "sys/mounts/team",
          token: rootToken,
          body: { type: "kv", options: { version: "2" } },
          status: 204
        },
        {
          name: "enable at a used path",
          method: "POST",
          path: "sys/mounts/team",
          token: rootToken,
          body: { type: "kv" },
          status: 400,
          expect: { errors: ["path is already in use at team/"] }
        },
        {
          name: "enable an unknown engine",
          method: "POST",
          path: "sys/mounts/pki",
          token: rootToken,
          body: { type: "pki" },
          status: 400,
          expect: { errors: ["plugin not found in the catalog: pki"] }
        },
        {
          name: "enable KV v1",
          method: "POST",
          path: "sys/mounts/v1",
          token: rootToken,
          body: { type: "kv" },
          status: 204
        },
        {
          name: "write in the new mount",
          method: "POST",
          path: "team/data/x",
          token: rootToken,
          body: { data: { a: 1 } },
          status: 200
        },
        { name: "write in KV v1", method: "POST", path: "v1/x", token: rootToken, body: { a: 1 }, status: 204 },
        {
          name: "read in KV v1",
          method: "GET",
          path: "v1/x",
          token: rootToken,
          status: 200,
          expect: { data: { a: 1 }, lease_duration: 2764800, mount_type: "kv" }
        },
        {
          name: "list in KV v1",
          method: "LIST",
          path: "v1/",
          token: rootToken,
          status: 200,
          expect: { data: { keys: ["x"] } }
        },
        { name: "disable", method: "DELETE", path: "sys/mounts/team", token: rootToken, status: 204 },
        { name: "gone", method: "GET", path: "team/data/x", token: rootToken, status: 404 }
      ])
      yield* runTable(url, [
        {
          name: "read tune",
          method: "GET",
          path: "sys/mounts/v1/tune",
          token: rootToken,
          status: 200,
          expect: { data: { default_lease_ttl: 0, max_lease_ttl: 0, options: { version: "1" } } }
        },
        {
          name: "upgrade to version 2",
          method: "POST",
          path: "sys/mounts/v1/tune",
          token: rootToken,
          body: { options: { version: "2" }, description: "upgraded" },
          status: 204
        },
        {
          name: "v1 data as version 1",
          method: "GET",
          path: "v1/data/x",
          token: rootToken,
          status: 200,
          expect: { data: { data: { a: 1 }, metadata: { version: 1 } } }
        },
        {
          name: "no downgrade",
          method: "POST",
          path: "sys/mounts/v1/tune",
          token: rootToken,
          body: { options: { version: "1" } },
          status: 400
        },
        {
          name: "tune auth",
          method: "POST",
          path: "sys/auth/token/tune",
          token: rootToken,
          body: { default_lease_ttl: "1h" },
          status: 204
        },
        {
          name: "read auth tune",
          method: "GET",
          path: "sys/auth/token/tune",
          token: rootToken,
          status: 200,
          expect: { data: { default_lease_ttl: 3600 } }
        }
      ])
      const tuned = yield* call(url, "POST", "auth/token/create", { token: rootToken, body: { policies: ["default"] } })
      expect(tuned.body.auth.lease_duration).toBe(3600)
      const after = yield* call(url, "GET", "sys/mounts", { token: rootToken })
      expect(Object.keys(after.body.data).sort()).toEqual(["identity/", "secret/", "sys/", "v1/"])
    }))

  it.scoped("lets a fresh KV v2 mount answer \"upgrading\" for the configured number of requests", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken, kvUpgradeRequests: 2 })
      yield* call(url, "POST", "sys/mounts/fresh", { token: rootToken, body: { type: "kv-v2" } })
      const first = yield* call(url, "POST", "fresh/data/a", { token: rootToken, body: { data: { a: 1 } } })
      expect(first.status).toBe(400)
      expect(first.body.errors[0]).toMatch(/^Upgrading from non-versioned to versioned data/)
      expect((yield* call(url, "GET", "fresh/data/a", { token: rootToken })).status).toBe(400)
      expect((yield* call(url, "POST", "fresh/data/a", { token: rootToken, body: { data: { a: 1 } } })).status).toBe(
        200
      )
      expect((yield* call(url, "POST", "secret/data/a", { token: rootToken, body: { data: { a: 1 } } })).status).toBe(
        200
      )
    }))
})

describe("VaultDevServer: auth methods (api-docs: system/auth)", () => {
  it.scoped("lists, enables and disables auth methods", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      yield* runTable(url, [
        {
          name: "list",
          method: "GET",
          path: "sys/auth",
          token: rootToken,
          status: 200,
          expect: { data: { "token/": { type: "token" } } }
        },
        {
          name: "enable kubernetes",
          method: "POST",
          path: "sys/auth/kubernetes",
          token: rootToken,
          body: { type: "kubernetes" },
          status: 204
        },
        {
          name: "enable twice",
          method: "POST",
          path: "sys/auth/kubernetes",
          token: rootToken,
          body: { type: "kubernetes" },
          status: 400,
          expect: { errors: ["path is already in use at auth/kubernetes/"] }
        },
        {
          name: "unknown method",
          method: "POST",
          path: "sys/auth/ldap",
          token: rootToken,
          body: { type: "ldap" },
          status: 400
        },
        {
          name: "listed",
          method: "GET",
          path: "sys/auth",
          token: rootToken,
          status: 200,
          expect: { data: { "kubernetes/": { type: "kubernetes" }, "token/": { type: "token" } } }
        },
        { name: "disable", method: "DELETE", path: "sys/auth/kubernetes", token: rootToken, status: 204 },
        { name: "login after disable", method: "POST", path: "auth/kubernetes/login", body: {}, status: 403 }
      ])
    }))
})

describe("VaultDevServer: ACL policies (api-docs: system/policies, concepts/policies)", () => {
  it.scoped("reads, writes, lists and deletes policies", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const text = "path \"secret/data/*\" {\n  capabilities = [\"read\"]\n}\n"
      yield* runTable(url, [
        {
          name: "write",
          method: "PUT",
          path: "sys/policies/acl/reader",
          token: rootToken,
          body: { policy: text },
          status: 204
        },
        {
          name: "read",
          method: "GET",
          path: "sys/policies/acl/reader",
          token: rootToken,
          status: 200,
          expect: { data: { name: "reader", policy: text } }
        },
        {
          name: "list",
          method: "LIST",
          path: "sys/policies/acl",
          token: rootToken,
          status: 200,
          expect: { data: { keys: ["default", "reader", "root"] } }
        },
        {
          name: "invalid HCL",
          method: "PUT",
          path: "sys/policies/acl/bad",
          token: rootToken,
          body: { policy: "path \"x\" { capabilities = [\"fly\"] }" },
          status: 400
        },
        {
          name: "legacy read",
          method: "GET",
          path: "sys/policy/reader",
          token: rootToken,
          status: 200,
          expect: { name: "reader", rules: text }
        },
        { name: "delete root", method: "DELETE", path: "sys/policies/acl/root", token: rootToken, status: 400 },
        { name: "delete default", method: "DELETE", path: "sys/policies/acl/default", token: rootToken, status: 400 },
        { name: "delete", method: "DELETE", path: "sys/policies/acl/reader", token: rootToken, status: 204 },
        { name: "read deleted", method: "GET", path: "sys/policies/acl/reader", token: rootToken, status: 404 }
      ])
      const bad = yield* call(url, "PUT", "sys/policies/acl/bad", { token: rootToken, body: { policy: "path {" } })
      expect(bad.body.errors[0]).toMatch(/^failed to parse policy/)
    }))

  it.scoped("enforces policies on every request, with globs and the most specific rule winning", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      yield* policy(
        url,
        "app",
        [
          "# reads under app, never the admin secret",
          "path \"secret/data/app/*\" { capabilities = [\"read\"] }",
          "path \"secret/data/app/admin\" { capabilities = [\"deny\"] }",
          "path \"secret/data/+/config\" { capabilities = [\"read\", \"create\"] }",
          "path \"secret/metadata/app/\" { capabilities = [\"list\"] }",
          "path \"secret/data/inbox\" { capabilities = [\"create\"] }"
        ].join("\n")
      )
      for (const key of ["app/db", "app/admin", "other/db", "team/config", "team/deep/config"]) {
        yield* call(url, "POST", `secret/data/${key}`, { token: rootToken, body: { data: { key } } })
      }
      const app = yield* tokenWith(url, { policies: ["app"] })
      yield* runTable(url, [
        { name: "read under a * glob", method: "GET", path: "secret/data/app/db", token: app, status: 200 },
        {
          name: "write without update",
          method: "POST",
          path: "secret/data/app/db",
          token: app,
          body: { data: {} },
          status: 403
        },
        { name: "explicit deny wins", method: "GET", path: "secret/data/app/admin", token: app, status: 403 },
        { name: "outside the glob", method: "GET", path: "secret/data/other/db", token: app, status: 403 },
        { name: "a + segment", method: "GET", path: "secret/data/team/config", token: app, status: 200 },
        { name: "+ is one segment only", method: "GET", path: "secret/data/team/deep/config", token: app, status: 403 },
        { name: "list the folder", method: "LIST", path: "secret/metadata/app", token: app, status: 200 },
        { name: "list elsewhere", method: "LIST", path: "secret/metadata/", token: app, status: 403 },
        {
          name: "create allowed",
          method: "POST",
          path: "secret/data/inbox",
          token: app,
          body: { data: { a: 1 } },
          status: 200
        },
        {
          name: "update needs update",
          method: "POST",
          path: "secret/data/inbox",
          token: app,
          body: { data: { a: 2 } },
          status: 403
        },
        { name: "sys is closed", method: "GET", path: "sys/mounts", token: app, status: 403 },
        {
          name: "policies are closed",
          method: "PUT",
          path: "sys/policies/acl/x",
          token: app,
          body: { policy: "" },
          status: 403
        },
        { name: "default: lookup-self", method: "GET", path: "auth/token/lookup-self", token: app, status: 200 },
        {
          name: "default: no token creation",
          method: "POST",
          path: "auth/token/create",
          token: app,
          body: {},
          status: 403
        }
      ])
      const capabilities = yield* call(url, "POST", "sys/capabilities-self", {
        token: app,
        body: { paths: ["secret/data/app/db", "secret/data/app/admin", "secret/data/team/config"] }
      })
      expect(capabilities.body.data).toMatchObject({
        "secret/data/app/db": ["read"],
        "secret/data/app/admin": ["deny"],
        "secret/data/team/config": ["create", "read"]
      })
    }))

  it.scoped("merges the rules of several policies and keeps child tokens within their parent's policies", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      yield* policy(url, "read-a", "path \"secret/data/a\" { capabilities = [\"read\"] }")
      yield* policy(url, "write-a", "path \"secret/data/a\" { capabilities = [\"update\", \"create\"] }")
      yield* policy(url, "creator", "path \"auth/token/create\" { capabilities = [\"update\"] }")
      const both = yield* tokenWith(url, { policies: ["read-a", "write-a", "creator"] })
      expect((yield* call(url, "POST", "secret/data/a", { token: both, body: { data: { a: 1 } } })).status).toBe(200)
      expect((yield* call(url, "GET", "secret/data/a", { token: both })).status).toBe(200)
      const child = yield* tokenWith(url, { policies: ["read-a"] }, both)
      expect((yield* call(url, "GET", "secret/data/a", { token: child })).status).toBe(200)
      expect((yield* call(url, "POST", "secret/data/a", { token: child, body: { data: {} } })).status).toBe(403)
      const escalate = yield* call(url, "POST", "auth/token/create", { token: both, body: { policies: ["root"] } })
      expect(escalate).toEqual({ status: 400, body: { errors: ["child policies must be subset of parent"] } })
      const revoked = yield* call(url, "POST", "auth/token/revoke-self", { token: both })
      expect(revoked.status).toBe(204)
      expect((yield* call(url, "GET", "secret/data/a", { token: child })).status).toBe(403)
    }))
})

describe("VaultDevServer: tokens (api-docs: auth/token)", () => {
  it.effect("creates, looks up, renews and expires tokens by the clock", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const created = yield* call(url, "POST", "auth/token/create", {
        token: rootToken,
        body: { policies: ["b", "a"], ttl: "60s", explicit_max_ttl: "100s", meta: { app: "x" }, display_name: "ci" }
      })
      expect(created.status).toBe(200)
      expect(created.body.auth).toMatchObject({
        policies: ["a", "b", "default"],
        token_policies: ["a", "b", "default"],
        metadata: { app: "x" },
        lease_duration: 60,
        renewable: true,
        token_type: "service",
        orphan: false
      })
      expect(created.body.data).toBeNull()
      const token = created.body.auth.client_token as string
      yield* TestClock.adjust("20 seconds")
      const lookup = yield* call(url, "GET", "auth/token/lookup-self", { token })
      expect(lookup.body.data).toMatchObject({
        id: token,
        ttl: 40,
        creation_ttl: 60,
        explicit_max_ttl: 100,
        display_name: "token-ci",
        path: "auth/token/create",
        policies: ["a", "b", "default"],
        meta: { app: "x" },
        type: "service"
      })
      const renewed = yield* call(url, "POST", "auth/token/renew-self", { token, body: { increment: "50s" } })
      expect(renewed.status).toBe(200)
      expect(renewed.body.auth.lease_duration).toBe(50)
      yield* TestClock.adjust("40 seconds")
      const capped = yield* call(url, "POST", "auth/token/renew-self", { token, body: { increment: 3600 } })
      expect(capped.body.auth.lease_duration).toBe(40)
      expect(capped.body.warnings).toHaveLength(1)
      yield* TestClock.adjust("39 seconds")
      expect((yield* call(url, "GET", "auth/token/lookup-self", { token })).status).toBe(200)
      yield* TestClock.adjust("2 seconds")
      const expired = yield* call(url, "GET", "auth/token/lookup-self", { token })
      expect(expired).toEqual({ status: 403, body: { errors: ["permission denied"] } })
      const root = yield* call(url, "GET", "auth/token/lookup-self", { token: rootToken })
      expect(root.body.data).toMatchObject({ policies: ["root"], ttl: 0, expire_time: null, path: "auth/token/root" })
    }).pipe(Effect.scoped))

  it.scoped("counts uses, refuses renewing what is not renewable, and revokes", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const limited = yield* tokenWith(url, { num_uses: 2 })
      expect((yield* call(url, "GET", "auth/token/lookup-self", { token: limited })).body.data.num_uses).toBe(1)
      expect((yield* call(url, "GET", "auth/token/lookup-self", { token: limited })).status).toBe(200)
      expect((yield* call(url, "GET", "auth/token/lookup-self", { token: limited })).status).toBe(403)
      const fixed = yield* tokenWith(url, { renewable: false, ttl: "1h" })
      const refused = yield* call(url, "POST", "auth/token/renew-self", { token: fixed })
      expect(refused).toEqual({ status: 400, body: { errors: ["lease is not renewable"] } })
      const inherited = yield* call(url, "POST", "auth/token/lookup", { token: rootToken, body: { token: limited } })
      expect(inherited).toEqual({ status: 403, body: { errors: ["bad token"] } })
      const asRoot = yield* tokenWith(url, {})
      const rootChild = yield* call(url, "GET", "auth/token/lookup-self", { token: asRoot })
      expect(rootChild.body.data).toMatchObject({ policies: ["root"], ttl: 0 })
      const other = yield* tokenWith(url, { policies: ["default"] })
      const looked = yield* call(url, "POST", "auth/token/lookup", { token: rootToken, body: { token: other } })
      expect(looked.body.data.ttl).toBe(768 * 3600)
      const revoke = yield* call(url, "POST", "auth/token/revoke", { token: rootToken, body: { token: other } })
      expect(revoke.status).toBe(204)
      expect((yield* call(url, "GET", "auth/token/lookup-self", { token: other })).status).toBe(403)
      const batch = yield* call(url, "POST", "auth/token/create", { token: rootToken, body: { type: "batch" } })
      expect(batch.status).toBe(400)
      const accessors = yield* call(url, "LIST", "auth/token/accessors", { token: rootToken })
      const rootAccessor = (yield* call(url, "GET", "auth/token/lookup-self", { token: rootToken })).body.data.accessor
      expect(accessors.body.data.keys).toContain(rootAccessor)
      expect(accessors.body.data.keys).not.toContain(looked.body.data.accessor)
      const plain = yield* tokenWith(url, { policies: ["default"] })
      const notSudo = yield* call(url, "LIST", "auth/token/accessors", { token: plain })
      expect(notSudo.status).toBe(403)
      const negative = yield* call(url, "POST", "auth/token/create", { token: rootToken, body: { num_uses: -1 } })
      expect(negative.status).toBe(400)
    }))
})

describe("VaultDevServer: as a layer", () => {
  const TestServer = VaultDevServer.layer({ rootToken })
  it.layer(TestServer)((it) => {
    it.effect("provides the running server", () =>
      Effect.gen(function*() {
        const server = yield* VaultDevServer.VaultDevServer
        expect(server.rootToken).toBe(rootToken)
        const health = yield* call(server.url, "GET", "sys/health")
        expect(health.status).toBe(200)
      }))
  })
})

describe("VaultDevServer: start-up failures", () => {
  it.scoped("says which address is taken and how to fix a bad certificate", () =>
    Effect.gen(function*() {
      const first = yield* VaultDevServer.start({ rootToken })
      const port = Number(new URL(first.url).port)
      const taken = yield* Effect.flip(VaultDevServer.start({ rootToken, port }))
      expect(taken).toBeInstanceOf(VaultDevServer.VaultDevServerError)
      expect(taken.reason).toBe("cannot_listen")
      expect(taken.message).toContain(`127.0.0.1:${port}`)
      const badTls = yield* Effect.flip(VaultDevServer.start({ rootToken, tls: { certPem: "nope", keyPem: "nope" } }))
      expect(badTls.reason).toBe("bad_tls")
      expect(badTls.message).toContain("PEM")
    }))
})

describe("VaultDevServer: bad input", () => {
  it.scoped("closes connections that do not speak HTTP and keeps serving", () =>
    Effect.gen(function*() {
      const { url } = yield* VaultDevServer.start({ rootToken })
      const garbage = yield* rawExchange(url, "\u0000\u0001NOT HTTP AT ALL\r\n\r\n")
      expect(garbage).not.toContain("200 OK")
      const unknownListLike = yield* rawExchange(url, "LISTEN /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
      expect(unknownListLike).not.toContain("200 OK")
      const array = yield* call(url, "POST", "secret/data/a", { token: rootToken, rawBody: "[1,2]" })
      expect(array.status).toBe(400)
      const noBody = yield* call(url, "POST", "sys/policies/acl/x", { token: rootToken })
      expect(noBody).toEqual({ status: 400, body: { errors: ["'policy' parameter not supplied or empty"] } })
      expect((yield* call(url, "GET", "sys/health")).status).toBe(200)
    }))
})
