import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Vault from "../src/Vault.ts"
import { VaultError, VaultPermissionDenied } from "../src/VaultError.ts"
import { closedPort, renderings, testServer } from "./VaultClientSupport.ts"

// The behaviours here are the ones the Vault dev server cannot produce on demand (a refused or silent connection, a
// standby node, a malformed answer), so these tests answer from a plain HTTP server on 127.0.0.1 instead.

const token = Redacted.make("hvs.client-test-token-that-must-not-leak")

const upgrading =
  "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period " +
  "and will resume service shortly."

describe("Vault client, transport and configuration", () => {
  it.scoped("a refused connection names the address and says what to check", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const address = `http://127.0.0.1:${port}`
      const vault = yield* Vault.make({ address, token })

      const error = yield* Effect.flip(vault.kvRead("secret", "app"))

      assert.strictEqual(error._tag, "VaultUnreachable")
      assert.strictEqual(
        error.message,
        `could not connect to Vault at ${address}: connection refused; check VAULT_ADDR and that Vault is listening`
      )
    }))

  it.scopedLive("a Vault that never answers fails after the timeout", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => "hang")
      const vault = yield* Vault.make({ address: server.url, token, timeout: "300 millis" })

      const error = yield* Effect.flip(vault.tokenLookupSelf())

      assert.strictEqual(error._tag, "VaultUnreachable")
      assert.include(error.message, `Vault at ${server.url} did not answer GET auth/token/lookup-self in time`)
      assert.strictEqual(server.seen.length, 1)
    }))

  it.scoped("the namespace goes in X-Vault-Namespace on API calls but not to the root-only sys/health", () =>
    Effect.gen(function*() {
      const server = yield* testServer((request) =>
        request.url.startsWith("/v1/sys/health")
          ? { status: 200, body: { initialized: true, sealed: false, standby: false, version: "1.17.0" } }
          : { status: 200, body: { data: { keys: ["app"] } } }
      )
      const vault = yield* Vault.make({ address: server.url, token, namespace: "team-eu" })

      const keys = yield* vault.kvList("secret", "")
      yield* vault.health()

      assert.deepStrictEqual(keys, ["app"])
      assert.strictEqual(server.seen[0].url, "/v1/secret/metadata?list=true")
      assert.strictEqual(server.seen[0].headers["x-vault-namespace"], "team-eu")
      assert.strictEqual(server.seen[0].headers["x-vault-token"], Redacted.value(token))
      assert.strictEqual(server.seen[1].headers["x-vault-namespace"], undefined)
      assert.strictEqual(server.seen[1].headers["x-vault-token"], undefined)
    }))

  it.scoped("the trace continues into Vault's request through traceparent", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({ status: 200, body: { data: { keys: [] } } }))
      const vault = yield* Vault.make({ address: server.url, token })

      const traceId = yield* vault.listPolicies().pipe(
        Effect.zipRight(Effect.map(Effect.currentSpan, (span) => span.traceId)),
        Effect.withSpan("caller")
      )

      assert.match(String(server.seen[0].headers.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`))
    }))

  it.scoped("a path with a dot segment is refused before anything is sent", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({ status: 200, body: { data: { keys: [] } } }))
      const vault = yield* Vault.make({ address: server.url, token })

      const up = yield* Effect.flip(vault.kvRead("secret", "app/../../sys/policies/acl/root"))
      const here = yield* Effect.flip(vault.readPolicy("./admin"))

      assert.strictEqual(up._tag, "VaultInvalidPath")
      assert.include(up.message, "the path has a \".\" or \"..\" segment")
      assert.strictEqual(here._tag, "VaultInvalidPath")
      assert.strictEqual(server.seen.length, 0)
    }))

  it.scoped("without a namespace no namespace header is sent", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({ status: 200, body: { data: { keys: [] } } }))
      const vault = yield* Vault.make({ address: server.url, token })

      yield* vault.listPolicies()

      assert.strictEqual(server.seen[0].headers["x-vault-namespace"], undefined)
      assert.strictEqual(server.seen[0].url, "/v1/sys/policies/acl?list=true")
    }))

  it.scoped("a 503 without a message is told apart by sys/health: a standby node", () =>
    Effect.gen(function*() {
      const server = yield* testServer((request) =>
        request.url.startsWith("/v1/sys/health")
          ? { status: 429, body: { initialized: true, sealed: false, standby: true } }
          : { status: 503, body: { errors: [] } }
      )
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.kvRead("secret", "app"))

      assert.strictEqual(error._tag, "VaultStandby")
      assert.include(error.message, "is a standby node")
      assert.deepStrictEqual(server.seen.map((request) => request.url), ["/v1/secret/data/app", "/v1/sys/health"])
    }))

  it.scoped("a 503 saying the active node cannot be found is a standby without asking sys/health", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({
        status: 503,
        body: { errors: ["local node not active but active cluster node not found"] }
      }))
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.readPolicy("app"))

      assert.strictEqual(error._tag, "VaultStandby")
      assert.strictEqual(server.seen.length, 1)
    }))

  it.scoped("a 429 from a rate limit quota is not mistaken for a standby node", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({
        status: 429,
        body: { errors: ["request path \"secret/data/app\": rate limit quota exceeded"] }
      }))
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.kvRead("secret", "app"))

      assert.strictEqual(error._tag, "VaultUnexpectedResponse")
      assert.include(error.message, "rate limit quota")
    }))

  it.scoped("sys/health maps every documented status code to a state and fails on others", () =>
    Effect.gen(function*() {
      const statuses = [200, 429, 472, 473, 501, 503, 500]
      const server = yield* testServer((_, index) => ({
        status: statuses[index],
        body: { initialized: statuses[index] !== 501, sealed: statuses[index] === 503, standby: false }
      }))
      const vault = yield* Vault.make({ address: server.url })

      const states = yield* Effect.forEach(statuses.slice(0, 6), () => Effect.map(vault.health(), (h) => h.state))
      const error = yield* Effect.flip(vault.health())

      assert.deepStrictEqual(states, [
        "active",
        "standby",
        "drSecondary",
        "performanceStandby",
        "uninitialized",
        "sealed"
      ])
      assert.strictEqual(error._tag, "VaultUnexpectedResponse")
    }))

  it.scoped("an answer that departs from the documented shape names the field, never the values", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({
        status: 200,
        body: { data: { id: Redacted.value(token), ttl: "not-a-number-but-a-secret", policies: ["default"] } }
      }))
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.tokenLookupSelf())

      assert.strictEqual(error._tag, "VaultUnexpectedResponse")
      assert.include(error.message, "data.ttl")
      for (const text of renderings(error)) {
        assert.notInclude(text, "not-a-number-but-a-secret")
        assert.notInclude(text, Redacted.value(token))
      }
    }))

  it.scoped("an answer larger than any Vault answer is cut off with an error", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({ status: 200, body: { data: { policy: "x".repeat(9 * 1024 * 1024) } } }))
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.readPolicy("app"))

      assert.strictEqual(error._tag, "VaultUnexpectedResponse")
      assert.include(error.message, "the body is larger than 8 MiB")
    }))

  it.scoped("a body that is not JSON is reported as such", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({ status: 200, body: undefined }))
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.readPolicy("app"))

      assert.strictEqual(error._tag, "VaultUnexpectedResponse")
    }))

  it.scopedLive("the KV upgrade retry gives up after eight attempts in all", () =>
    Effect.gen(function*() {
      const server = yield* testServer(() => ({ status: 400, body: { errors: [upgrading] } }))
      const vault = yield* Vault.make({ address: server.url, token })

      const error = yield* Effect.flip(vault.kvReadMetadata("secret", "app"))

      assert.strictEqual(error._tag, "VaultBadRequest")
      assert.strictEqual(server.seen.length, 8)
    }))

  it.scoped("no other failure is retried: not a 400, not a 500, not a 503, not outside KV", () =>
    Effect.gen(function*() {
      const answers = [
        { status: 400, body: { errors: ["check-and-set parameter did not match the current version"] } },
        { status: 500, body: { errors: ["internal error"] } },
        { status: 503, body: { errors: ["Vault is sealed"] } },
        { status: 400, body: { errors: [upgrading] } }
      ]
      const server = yield* testServer((_, index) => answers[index] ?? { status: 500 })
      const vault = yield* Vault.make({ address: server.url, token })

      const cas = yield* Effect.flip(vault.kvWrite("secret", "app", { key: "value" }, { cas: 3 }))
      const internal = yield* Effect.flip(vault.kvRead("secret", "app"))
      const sealed = yield* Effect.flip(vault.kvList("secret", ""))
      const notKv = yield* Effect.flip(vault.readPolicy("app"))

      assert.deepStrictEqual([cas._tag, internal._tag, sealed._tag, notKv._tag], [
        "VaultBadRequest",
        "VaultUnexpectedResponse",
        "VaultSealed",
        "VaultBadRequest"
      ])
      assert.strictEqual(server.seen.length, 4)
    }))

  it.effect("an error crosses a wire through the VaultError schema and keeps its message", () =>
    Effect.gen(function*() {
      const error = new VaultPermissionDenied({
        address: "https://vault.example:8200",
        method: "GET",
        path: "secret/data/app",
        capability: "read",
        errors: ["permission denied"]
      })

      const wire = JSON.stringify(yield* Schema.encode(VaultError)(error))
      const decoded = yield* Schema.decodeUnknown(Schema.parseJson(VaultError))(wire)

      assert.strictEqual(decoded._tag, "VaultPermissionDenied")
      assert.strictEqual(decoded.message, error.message)
      assert.include(decoded.message, "do not grant read on secret/data/app")
    }))

  it.effect("an address that is not an http(s) URL is refused before any call", () =>
    Effect.gen(function*() {
      const notUrl = yield* Effect.flip(Effect.scoped(Vault.make({ address: "vault:8200" })))
      const withToken = yield* Effect.flip(Effect.scoped(Vault.make({ address: "https://user:pw@vault:8200" })))

      assert.strictEqual(notUrl._tag, "VaultConfigError")
      assert.include(notUrl.message, "must start with https:// or http://")
      assert.strictEqual(withToken._tag, "VaultConfigError")
    }))

  it.effect("a CA bundle without a readable certificate is refused before any call", () =>
    Effect.gen(function*() {
      const address = "https://127.0.0.1:8200"
      const notPem = yield* Effect.flip(Effect.scoped(Vault.make({ address, caCertPem: "not a certificate" })))
      const broken = yield* Effect.flip(
        Effect.scoped(
          Vault.make({ address, caCertPem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" })
        )
      )

      assert.strictEqual(notPem._tag, "VaultConfigError")
      assert.include(notPem.message, "the CA bundle holds no PEM certificate")
      assert.strictEqual(broken._tag, "VaultConfigError")
      assert.include(broken.message, "certificate 1 of the CA bundle cannot be parsed")
    }))

  it.effect("the configuration comes from VAULT_* variables, the CA bundle from the file VAULT_CACERT names", () =>
    Effect.gen(function*() {
      const directory = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "vault-client-"))),
        (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
      )
      const caPath = join(directory, "ca.pem")
      yield* Effect.promise(() => writeFile(caPath, "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))
      const environment = new Map([
        ["VAULT_ADDR", "https://vault.example:8200"],
        ["VAULT_TOKEN", "hvs.from-environment"],
        ["VAULT_NAMESPACE", "team-eu"],
        ["VAULT_CACERT", caPath]
      ])

      const options = yield* Effect.withConfigProvider(
        Vault.optionsFromConfig,
        ConfigProvider.fromMap(environment, { pathDelim: "_" })
      )
      const missing = yield* Effect.flip(
        Effect.withConfigProvider(
          Vault.optionsFromConfig,
          ConfigProvider.fromMap(new Map([["VAULT_CACERT", join(directory, "absent.pem")]]), { pathDelim: "_" })
        )
      )

      assert.strictEqual(options.address, "https://vault.example:8200")
      assert.strictEqual(
        options.token === undefined ? undefined : Redacted.value(options.token),
        "hvs.from-environment"
      )
      assert.strictEqual(options.namespace, "team-eu")
      assert.include(options.caCertPem, "BEGIN CERTIFICATE")
      assert.strictEqual(missing._tag, "VaultConfigError")
      assert.include(missing.message, "VAULT_CACERT")
    }).pipe(Effect.scoped))
})
