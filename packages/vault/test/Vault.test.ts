import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { makeCa, makeLeaf } from "@cloudtaser/pki/Certificates"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Vault from "../src/Vault.ts"
import * as VaultDevServer from "../src/VaultDevServer.ts"
import { renderings, withRecordedSpans } from "./VaultClientSupport.ts"

const rootToken = "hvs.root-token-for-the-client-tests"

/** Starts a Vault dev server and a client for it with the root token. */
const devVault = (options: Partial<VaultDevServer.VaultDevServerOptions> = {}) =>
  Effect.gen(function*() {
    const server = yield* VaultDevServer.start({ rootToken, ...options })
    const vault = yield* Vault.make({ address: server.url, token: Redacted.make(rootToken) })
    return { server, vault }
  })

/** Creates a token through the API with the root token; the test chooses its id so it can look for it later. */
const createToken = (
  url: string,
  body: { readonly id: string; readonly policies: ReadonlyArray<string>; readonly ttl?: string }
) =>
  Effect.promise(() =>
    fetch(`${url}/v1/auth/token/create`, {
      method: "POST",
      headers: { "X-Vault-Token": rootToken, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    })
  ).pipe(
    Effect.flatMap((response) =>
      response.ok ? Effect.succeed(Redacted.make(body.id)) : Effect.dieMessage(`token create: ${response.status}`)
    )
  )

const appReader = `path "secret/data/other" {
  capabilities = ["read"]
}
`

describe("Vault client against the Vault dev server", () => {
  it.scoped("health reports an active, initialized, unsealed node and then a sealed one", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()

      const active = yield* vault.health()
      yield* server.seal()
      const sealed = yield* vault.health()

      assert.strictEqual(active.status, 200)
      assert.strictEqual(active.state, "active")
      assert.isTrue(active.initialized)
      assert.isFalse(active.sealed)
      assert.strictEqual(sealed.status, 503)
      assert.strictEqual(sealed.state, "sealed")
      assert.isTrue(sealed.sealed)
    }))

  it.scoped("health reports a standby node as standby, not as a failure", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault({ standby: true })

      const health = yield* vault.health()

      assert.strictEqual(health.status, 429)
      assert.strictEqual(health.state, "standby")
      assert.isTrue(health.standby)
    }))

  it.scoped("mounts: lists the engines and enables a KV v2 engine", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      yield* vault.enableKvV2("cloudtaser", { description: "CloudTaser configuration" })
      const mounts = yield* vault.listMounts()

      const mount = mounts.find((mount) => mount.path === "cloudtaser")
      assert.strictEqual(mount?.type, "kv")
      assert.strictEqual(mount?.options.version, "2")
      assert.strictEqual(mount?.description, "CloudTaser configuration")
      assert.isTrue(mounts.some((mount) => mount.path === "sys" && mount.type === "system"))
    }))

  it.scoped("enabling a KV v2 engine where one already is fails with Vault's reason", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      const error = yield* Effect.flip(vault.enableKvV2("secret"))

      assert.strictEqual(error._tag, "VaultBadRequest")
      assert.include(error.message, "Vault said:")
    }))

  it.scoped("auth methods: lists them and enables Kubernetes auth", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      const before = yield* vault.listAuthMethods()
      yield* vault.enableAuthMethod("kubernetes", "kubernetes", { description: "cluster in another network" })
      const after = yield* vault.listAuthMethods()

      assert.deepStrictEqual(before.map((method) => method.path), ["token"])
      assert.deepStrictEqual(after.map((method) => [method.path, method.type]), [
        ["kubernetes", "kubernetes"],
        ["token", "token"]
      ])
    }))

  it.scoped("Kubernetes auth: writes and reads back the configuration and a role", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()
      const ca = yield* makeCa({ commonName: "cluster CA" }).pipe(Effect.orDie)

      yield* vault.enableAuthMethod("k8s-eu", "kubernetes")
      yield* vault.writeKubernetesAuthConfig({
        kubernetesHost: "https://127.0.0.1:6443",
        kubernetesCaCert: ca.certPem,
        tokenReviewerJwt: Redacted.make("reviewer.jwt.value")
      }, { mount: "k8s-eu" })
      yield* vault.writeKubernetesRole("payments", {
        boundServiceAccountNames: ["payments"],
        boundServiceAccountNamespaces: ["prod", "staging"],
        tokenPolicies: ["payments-read"],
        audience: "vault",
        tokenTtl: "20 minutes",
        tokenMaxTtl: "1 hour"
      }, { mount: "k8s-eu" })
      const config = yield* vault.readKubernetesAuthConfig({ mount: "k8s-eu" })
      const role = yield* vault.readKubernetesRole("payments", { mount: "k8s-eu" })

      assert.strictEqual(config.kubernetesHost, "https://127.0.0.1:6443")
      assert.strictEqual(config.kubernetesCaCert, ca.certPem)
      assert.isTrue(config.tokenReviewerJwtSet)
      assert.deepStrictEqual(role.boundServiceAccountNames, ["payments"])
      assert.deepStrictEqual(role.boundServiceAccountNamespaces, ["prod", "staging"])
      assert.deepStrictEqual(role.tokenPolicies, ["payments-read"])
      assert.strictEqual(role.audience, "vault")
      assert.strictEqual(role.tokenTtl, 1200)
      assert.strictEqual(role.tokenMaxTtl, 3600)
    }))

  it.scoped("ACL policies: write, read, list and delete", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      yield* vault.writePolicy("app-reader", appReader)
      const text = yield* vault.readPolicy("app-reader")
      const listed = yield* vault.listPolicies()
      yield* vault.deletePolicy("app-reader")
      const afterDelete = yield* vault.listPolicies()
      const gone = yield* Effect.flip(vault.readPolicy("app-reader"))

      assert.strictEqual(text, appReader)
      assert.include(listed, "app-reader")
      assert.notInclude(afterDelete, "app-reader")
      assert.strictEqual(gone._tag, "VaultNotFound")
    }))

  it.scoped("a policy Vault cannot parse is refused with Vault's message", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      const error = yield* Effect.flip(vault.writePolicy("broken", "path \"secret/*\" { capabilities = "))

      assert.strictEqual(error._tag, "VaultBadRequest")
      assert.include(error.message, "Vault at ")
      assert.include(error.message, "refused POST sys/policies/acl/broken (Vault said:")
    }))

  it.scoped("KV v2: writes versions, reads the latest and an older one, metadata and lists", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      const first = yield* vault.kvWrite("secret", "apps/payments", { DB_PASSWORD: "one" })
      const second = yield* vault.kvWrite("secret", "apps/payments", { DB_PASSWORD: "two" }, { cas: 1 })
      yield* vault.kvWrite("secret", "apps/orders/db", { user: "orders" })
      const latest = yield* vault.kvRead("secret", "apps/payments")
      const older = yield* vault.kvRead("secret", "apps/payments", { version: 1 })
      yield* vault.kvWriteMetadata("secret", "apps/payments", {
        maxVersions: 5,
        customMetadata: { owner: "payments-team" }
      })
      const metadata = yield* vault.kvReadMetadata("secret", "apps/payments")
      const keys = yield* vault.kvList("secret", "apps")
      const empty = yield* vault.kvList("secret", "nothing-here")

      assert.strictEqual(first.version, 1)
      assert.strictEqual(second.version, 2)
      assert.deepStrictEqual(latest.data, { DB_PASSWORD: "two" })
      assert.strictEqual(latest.version, 2)
      assert.deepStrictEqual(older.data, { DB_PASSWORD: "one" })
      assert.strictEqual(older.version, 1)
      assert.strictEqual(metadata.currentVersion, 2)
      assert.strictEqual(metadata.maxVersions, 5)
      assert.deepStrictEqual(metadata.customMetadata, { owner: "payments-team" })
      assert.deepStrictEqual(Object.keys(metadata.versions).sort(), ["1", "2"])
      assert.deepStrictEqual(keys, ["orders/", "payments"])
      assert.deepStrictEqual(empty, [])
    }))

  it.scoped("KV v2: a check-and-set mismatch is a bad request that says to re-read the version", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault()

      yield* vault.kvWrite("secret", "app", { key: "v1" })
      const error = yield* Effect.flip(vault.kvWrite("secret", "app", { key: "v2" }, { cas: 0 }))

      assert.strictEqual(error._tag, "VaultBadRequest")
      if (error._tag !== "VaultBadRequest") return
      assert.isTrue(error.checkAndSetMismatch)
      assert.include(error.message, "check-and-set parameter did not match the current version")
      assert.include(error.message, "write again with cas set to it")
    }))

  it.scoped("KV v2: a missing secret is not found at its path", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()

      const error = yield* Effect.flip(vault.kvRead("secret", "does/not/exist"))

      assert.strictEqual(error._tag, "VaultNotFound")
      assert.strictEqual(
        error.message,
        `nothing found at secret/data/does/not/exist on Vault at ${server.url}: check the path, and that a secrets ` +
          `engine or auth method is enabled at its mount`
      )
    }))

  it.scoped("403: a token whose policy does not cover the path is told which capability on which path", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()
      yield* vault.writePolicy("other-reader", appReader)
      yield* vault.kvWrite("secret", "app", { key: "value" })
      const weak = yield* createToken(server.url, { id: "hvs.weak-token-1", policies: ["other-reader"] })

      const error = yield* Effect.flip(vault.withToken(weak).kvRead("secret", "app"))

      assert.strictEqual(error._tag, "VaultPermissionDenied")
      assert.include(error.message, `Vault at ${server.url} denied GET secret/data/app`)
      assert.include(error.message, "the token is invalid, expired or revoked")
      assert.include(error.message, "do not grant read on secret/data/app")
      for (const text of renderings(error)) assert.notInclude(text, "hvs.weak-token-1")
    }))

  it.scoped("403: a call without any token says to set VAULT_TOKEN", () =>
    Effect.gen(function*() {
      const { server } = yield* devVault()
      const vault = yield* Vault.make({ address: server.url })

      const error = yield* Effect.flip(vault.listPolicies())

      assert.strictEqual(error._tag, "VaultPermissionDenied")
      assert.include(error.message, "no token was sent; set VAULT_TOKEN")
    }))

  it.scoped("403: an expired token is refused", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()
      const shortLived = yield* createToken(server.url, { id: "hvs.short-lived", policies: ["default"], ttl: "60s" })
      const client = vault.withToken(shortLived)

      const before = yield* client.tokenLookupSelf()
      yield* TestClock.adjust("61 seconds")
      const error = yield* Effect.flip(client.tokenLookupSelf())

      assert.isAtMost(before.ttl, 60)
      assert.strictEqual(error._tag, "VaultPermissionDenied")
      assert.include(error.message, "auth/token/lookup-self")
    }))

  it.scoped("token: looks itself up, renews and revokes itself, and is refused afterwards", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()
      const token = yield* createToken(server.url, { id: "hvs.renewable", policies: ["default"], ttl: "10m" })
      const client = vault.withToken(token)

      const info = yield* client.tokenLookupSelf()
      const renewal = yield* client.tokenRenewSelf({ increment: "30 minutes" })
      yield* client.tokenRevokeSelf()
      const error = yield* Effect.flip(client.tokenLookupSelf())

      assert.deepStrictEqual(info.policies, ["default"])
      assert.isTrue(info.renewable)
      assert.notProperty(info, "id")
      assert.strictEqual(renewal.leaseDuration, 1800)
      assert.isTrue(renewal.renewable)
      assert.notProperty(renewal, "clientToken")
      assert.strictEqual(error._tag, "VaultPermissionDenied")
    }))

  it.scoped("503: a sealed Vault says so and says to unseal it", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()
      yield* server.seal()

      const error = yield* Effect.flip(vault.kvRead("secret", "app"))
      yield* server.unseal()
      const afterUnseal = yield* Effect.flip(vault.kvRead("secret", "app"))

      assert.strictEqual(error._tag, "VaultSealed")
      assert.strictEqual(
        error.message,
        `Vault at ${server.url} is sealed and cannot serve GET secret/data/app: ` +
          "unseal it (vault operator unseal) and retry"
      )
      assert.strictEqual(afterUnseal._tag, "VaultNotFound")
    }))

  it.scopedLive("KV v2: right after the engine is enabled, the upgrading answers are retried until it serves", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault({ kvUpgradeRequests: 3 })

      yield* vault.enableKvV2("fresh")
      const written = yield* vault.kvWrite("fresh", "app", { key: "value" })
      const read = yield* vault.kvRead("fresh", "app")

      assert.strictEqual(written.version, 1)
      assert.deepStrictEqual(read.data, { key: "value" })
    }))

  it.scopedLive("KV v2: an engine that keeps upgrading fails after a few seconds with the reason", () =>
    Effect.gen(function*() {
      const { vault } = yield* devVault({ kvUpgradeRequests: 1000 })

      yield* vault.enableKvV2("stuck")
      const error = yield* Effect.flip(vault.kvRead("stuck", "app"))

      assert.strictEqual(error._tag, "VaultBadRequest")
      assert.include(error.message, "Upgrading from non-versioned to versioned data")
      assert.include(error.message, "retry in a few seconds")
    }))

  it.scoped("the token never reaches a span or an error, and the HTTP span shows its header as redacted", () =>
    Effect.gen(function*() {
      const { server, vault } = yield* devVault()
      yield* vault.writePolicy("other-reader", appReader)
      const weak = yield* createToken(server.url, { id: "hvs.weak-token-for-spans", policies: ["other-reader"] })

      const { exit, spans } = yield* withRecordedSpans(Effect.gen(function*() {
        yield* vault.health()
        yield* vault.kvWrite("secret", "app", { key: "value" })
        yield* vault.kvRead("secret", "app")
        yield* vault.tokenLookupSelf()
        const errors = [
          yield* Effect.flip(vault.kvRead("secret", "missing")),
          yield* Effect.flip(vault.withToken(weak).kvRead("secret", "app")),
          yield* Effect.flip(vault.withToken(weak).writePolicy("x", "path \"a\" {}")),
          yield* Effect.flip(vault.kvWrite("secret", "app", { key: "again" }, { cas: 0 }))
        ]
        yield* server.seal()
        errors.push(yield* Effect.flip(vault.withToken(weak).kvRead("secret", "app")))
        return errors
      }))

      assert.isTrue(Exit.isSuccess(exit))
      if (!Exit.isSuccess(exit)) return
      const recorded = spans()
      const http = recorded.filter((span) => span.attributes.has("http.request.method"))
      assert.isAbove(http.length, 5)
      assert.isTrue(recorded.some((span) => span.name === "Vault.kvRead"))
      assert.strictEqual(
        http.find((span) => span.text.includes("/v1/secret/data/app"))?.attributes.get(
          "http.request.header.x-vault-token"
        )?.toString(),
        "<redacted>"
      )
      for (const span of recorded) {
        assert.notInclude(span.text, rootToken)
        assert.notInclude(span.text, "hvs.weak-token-for-spans")
      }
      assert.deepStrictEqual(exit.value.map((error) => error._tag), [
        "VaultNotFound",
        "VaultPermissionDenied",
        "VaultPermissionDenied",
        "VaultBadRequest",
        "VaultSealed"
      ])
      for (const error of exit.value) {
        for (const text of renderings(error)) {
          assert.notInclude(text, rootToken)
          assert.notInclude(text, "hvs.weak-token-for-spans")
        }
      }
    }))
})

describe("Vault client: Kubernetes login through the Kubernetes dev API", () => {
  const paymentsReader = `path "secret/data/payments" {
  capabilities = ["read"]
}
`

  const kubernetesVault = Effect.gen(function*() {
    const kube = yield* KubeDevApi.start()
    const { server, vault } = yield* devVault()
    yield* vault.writePolicy("payments-read", paymentsReader)
    yield* vault.kvWrite("secret", "payments", { DB_PASSWORD: "payments-db-password" })
    yield* vault.kvWrite("secret", "orders", { DB_PASSWORD: "orders-db-password" })
    yield* vault.enableAuthMethod("kubernetes", "kubernetes")
    yield* vault.writeKubernetesAuthConfig({
      kubernetesHost: kube.url,
      kubernetesCaCert: kube.caPem,
      tokenReviewerJwt: Redacted.make(kube.adminToken)
    })
    yield* vault.writeKubernetesRole("payments", {
      boundServiceAccountNames: ["payments"],
      boundServiceAccountNamespaces: ["prod"],
      tokenPolicies: ["payments-read"],
      tokenTtl: "20 minutes"
    })
    return { kube, server, vault }
  }).pipe(Effect.orDie)

  it.scoped("a service account token becomes a Vault token with the role's policies and lease", () =>
    Effect.gen(function*() {
      const { kube, vault } = yield* kubernetesVault
      const jwt = yield* kube.issueToken({ namespace: "prod", serviceAccount: "payments" })

      const login = yield* vault.kubernetesLogin({ role: "payments", jwt: Redacted.make(jwt) })
      const pod = vault.withToken(login.clientToken)
      const secret = yield* pod.kvRead("secret", "payments")
      const denied = yield* Effect.flip(pod.kvRead("secret", "orders"))
      const info = yield* pod.tokenLookupSelf()

      assert.include(login.policies, "payments-read")
      assert.strictEqual(login.leaseDuration, 1200)
      assert.isTrue(login.renewable)
      assert.strictEqual(login.metadata.service_account_name, "payments")
      assert.strictEqual(login.metadata.service_account_namespace, "prod")
      assert.strictEqual(String(login.clientToken), "<redacted>")
      assert.notStrictEqual(Redacted.value(login.clientToken), rootToken)
      assert.deepStrictEqual(secret.data, { DB_PASSWORD: "payments-db-password" })
      assert.strictEqual(denied._tag, "VaultPermissionDenied")
      assert.include(denied.message, "do not grant read on secret/data/orders")
      assert.include(info.policies, "payments-read")
    }))

  it.scoped("a service account the role is not bound to is refused, saying what to check", () =>
    Effect.gen(function*() {
      const { kube, vault } = yield* kubernetesVault
      const jwt = yield* kube.issueToken({ namespace: "dev", serviceAccount: "payments" })

      const { exit, spans } = yield* withRecordedSpans(
        vault.kubernetesLogin({ role: "payments", jwt: Redacted.make(jwt) })
      )
      const unknownRole = yield* Effect.flip(vault.kubernetesLogin({ role: "nope", jwt: Redacted.make(jwt) }))

      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "VaultLoginDenied")
      assert.include(error.message, "refused the login at auth/kubernetes/login for role \"payments\"")
      assert.include(error.message, "bound service account names and namespaces")
      assert.strictEqual(unknownRole._tag, "VaultLoginDenied")
      assert.include(unknownRole.message, "check that the role exists")
      for (const text of [...renderings(error), ...renderings(unknownRole), ...spans().map((span) => span.text)]) {
        assert.notInclude(text, jwt)
        assert.notInclude(text, rootToken)
      }
    }))
})

describe("Vault client over HTTPS", () => {
  const httpsVault = Effect.gen(function*() {
    const ca = yield* makeCa({ commonName: "Vault test CA" })
    const leaf = yield* makeLeaf({ ca, role: "server", commonName: "127.0.0.1", ipAddresses: ["127.0.0.1"] })
    const server = yield* VaultDevServer.start({ rootToken, tls: { certPem: leaf.certPem, keyPem: leaf.keyPem } })
    return { server, caPem: ca.certPem }
  }).pipe(Effect.orDie)

  it.scoped("trusts Vault's certificate through the given CA bundle", () =>
    Effect.gen(function*() {
      const { caPem, server } = yield* httpsVault
      const vault = yield* Vault.make({ address: server.url, token: Redacted.make(rootToken), caCertPem: caPem })

      const health = yield* vault.health()
      const written = yield* vault.kvWrite("secret", "tls", { over: "https" })

      assert.isTrue(server.url.startsWith("https://127.0.0.1:"))
      assert.strictEqual(health.state, "active")
      assert.strictEqual(written.version, 1)
    }))

  it.scoped("a CA bundle that did not issue Vault's certificate fails TLS and says to check the bundle", () =>
    Effect.gen(function*() {
      const { server } = yield* httpsVault
      const otherCa = yield* makeCa({ commonName: "Some other CA" }).pipe(Effect.orDie)
      const vault = yield* Vault.make({
        address: server.url,
        token: Redacted.make(rootToken),
        caCertPem: otherCa.certPem
      })

      const error = yield* Effect.flip(vault.kvRead("secret", "app"))

      assert.strictEqual(error._tag, "VaultTlsError")
      assert.include(error.message, `TLS with Vault at ${server.url} failed`)
      assert.include(error.message, "check the CA bundle (VAULT_CACERT)")
      for (const text of renderings(error)) assert.notInclude(text, rootToken)
    }))

  it.scoped("a certificate for another name fails TLS, and tlsServerName names the one to expect", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "Vault test CA" }).pipe(Effect.orDie)
      const leaf = yield* makeLeaf({ ca, role: "server", commonName: "vault.internal", dnsNames: ["vault.internal"] })
        .pipe(Effect.orDie)
      const server = yield* VaultDevServer.start({ rootToken, tls: { certPem: leaf.certPem, keyPem: leaf.keyPem } })
      const byAddress = yield* Vault.make({ address: server.url, caCertPem: ca.certPem })
      const byName = yield* Vault.make({ address: server.url, caCertPem: ca.certPem, tlsServerName: "vault.internal" })

      const error = yield* Effect.flip(byAddress.health())
      const health = yield* byName.health()

      assert.strictEqual(error._tag, "VaultTlsError")
      assert.include(error.message, "names the host in VAULT_ADDR")
      assert.strictEqual(health.state, "active")
    }))

  it.scoped("without a CA bundle the system roots do not trust a private CA", () =>
    Effect.gen(function*() {
      const { server } = yield* httpsVault
      const vault = yield* Vault.make({ address: server.url })

      const error = yield* Effect.flip(vault.health())

      assert.strictEqual(error._tag, "VaultTlsError")
    }))

  it.scoped("http:// to an HTTPS Vault is not mistaken for a working connection", () =>
    Effect.gen(function*() {
      const { server } = yield* httpsVault
      const vault = yield* Vault.make({ address: server.url.replace("https://", "http://") })

      const error = yield* Effect.flip(vault.health())

      assert.oneOf(error._tag, ["VaultUnreachable", "VaultUnexpectedResponse"])
    }))
})

describe("Vault service layers", () => {
  it.scoped("Vault.layer provides the service from explicit options", () =>
    Effect.gen(function*() {
      const server = yield* VaultDevServer.start({ rootToken })
      const layer = Vault.Vault.layer({ address: server.url, token: Redacted.make(rootToken) })

      const health = yield* Effect.flatMap(Vault.Vault, (vault) => vault.health()).pipe(
        Effect.provide(Layer.orDie(layer))
      )

      assert.strictEqual(health.state, "active")
    }))

  it.scoped("Vault.Default takes the address and token from VAULT_ADDR and VAULT_TOKEN", () =>
    Effect.gen(function*() {
      const server = yield* VaultDevServer.start({ rootToken })
      const environment = ConfigProvider.fromMap(new Map([["VAULT_ADDR", server.url], ["VAULT_TOKEN", rootToken]]), {
        pathDelim: "_"
      })

      const info = yield* Effect.flatMap(Vault.Vault, (vault) => vault.tokenLookupSelf()).pipe(
        Effect.provide(Layer.orDie(Vault.Vault.Default)),
        Effect.withConfigProvider(environment)
      )

      assert.deepStrictEqual(info.policies, ["root"])
    }))
})
