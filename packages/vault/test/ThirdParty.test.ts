import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { makeServerCertificate } from "@cloudtaser/pki/Certificates"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import HashiVault from "hashi-vault-js"
import NodeVault from "node-vault"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as VaultDevServer from "../src/VaultDevServer.ts"

const rootToken = "root-token-for-tests"

const readerPolicy = [
  "path \"secret/data/app/*\" {",
  "  capabilities = [\"read\"]",
  "}",
  "path \"secret/metadata/app/*\" {",
  "  capabilities = [\"list\"]",
  "}",
  ""
].join("\n")

/** A dev server over HTTPS with a certificate for 127.0.0.1, and that certificate's PEM for clients to trust. */
const httpsServer = Effect.gen(function*() {
  const certificate = yield* makeServerCertificate({ commonName: "vault-dev", ipAddresses: ["127.0.0.1"] })
  const server = yield* VaultDevServer.start({
    rootToken,
    tls: { certPem: certificate.certPem, keyPem: certificate.keyPem }
  })
  return { server, ca: certificate.certPem }
})

/** What the clients resolve with: their typings say `Object` or `any`, and the tests read Vault's JSON from it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
type Json = any

/** Runs a client call; a rejection fails the test with the client's own error. */
const attempt = (run: () => PromiseLike<unknown>): Effect.Effect<Json, unknown> =>
  Effect.tryPromise({ try: async () => await run(), catch: (error) => error })

/** The HTTP status a client's rejection carries, however the client spells it. */
const statusOf = (error: unknown): number | undefined => {
  const candidate = error as { response?: { statusCode?: number; status?: number } }
  return candidate.response?.statusCode ?? candidate.response?.status
}

const kubernetesSetup = (url: string, ca: string | undefined) =>
  Effect.gen(function*() {
    const kube = yield* KubeDevApi.start()
    const jwt = yield* kube.issueToken({ namespace: "prod", serviceAccount: "app" })
    const root = NodeVault({ endpoint: url, token: rootToken, ...(ca === undefined ? {} : { requestOptions: { ca } }) })
    yield* attempt(() => root.enableAuth({ mount_point: "kubernetes", type: "kubernetes" }))
    return { kube, jwt, root }
  })

describe("third-party clients, unchanged, against the Vault dev server double", () => {
  it.scoped("node-vault: token login, KV v2 write and read, LIST, policies, tokens, seal", () =>
    Effect.gen(function*() {
      const { ca, server } = yield* httpsServer
      const root = NodeVault({ endpoint: server.url, token: rootToken, requestOptions: { ca } })
      const health = yield* attempt(() => root.health())
      expect(health).toMatchObject({ initialized: true, sealed: false })
      yield* attempt(() => root.write("secret/data/app/db", { data: { password: "p1" } }))
      yield* attempt(() => root.write("secret/data/app/cache", { data: { url: "redis://" } }))
      const read = yield* attempt(() => root.read("secret/data/app/db"))
      expect(read.data.data).toEqual({ password: "p1" })
      expect(read.data.metadata.version).toBe(1)
      const listed = yield* attempt(() => root.list("secret/metadata/app"))
      expect(listed.data.keys).toEqual(["cache", "db"])
      const plainVerbs = NodeVault({
        endpoint: server.url,
        token: rootToken,
        requestOptions: { ca },
        noCustomHTTPVerbs: true
      })
      expect((yield* attempt(() => plainVerbs.list("secret/metadata/"))).data.keys).toEqual(["app/"])
      yield* attempt(() => root.addPolicy({ name: "app-reader", rules: readerPolicy }))
      const policies = yield* attempt(() => root.policies())
      expect(policies.policies).toEqual(["app-reader", "default", "root"])
      expect((yield* attempt(() => root.getPolicy({ name: "app-reader" }))).rules).toBe(readerPolicy)
      // node-vault adopts the token it creates, so a separate client creates it.
      const creator = NodeVault({ endpoint: server.url, token: rootToken, requestOptions: { ca } })
      const created = yield* attempt(() => creator.tokenCreate({ policies: ["app-reader"], ttl: "1h" }))
      expect(creator.token).toBe(created.auth.client_token)
      expect(created.auth.policies).toEqual(["app-reader", "default"])
      const reader = NodeVault({ endpoint: server.url, token: created.auth.client_token, requestOptions: { ca } })
      expect((yield* attempt(() => reader.read("secret/data/app/db"))).data.data).toEqual({ password: "p1" })
      const denied = yield* Effect.flip(attempt(() => reader.write("secret/data/app/db", { data: { password: "x" } })))
      expect(statusOf(denied)).toBe(403)
      expect((denied as Error).message).toBe("permission denied")
      const self = yield* attempt(() => reader.tokenLookupSelf())
      expect(self.data).toMatchObject({ ttl: 3600, policies: ["app-reader", "default"] })
      const renewed = yield* attempt(() => reader.tokenRenewSelf({ increment: "30m" }))
      expect(renewed.auth.lease_duration).toBe(1800)
      yield* attempt(() => reader.tokenRevokeSelf())
      expect(statusOf(yield* Effect.flip(attempt(() => reader.read("secret/data/app/db"))))).toBe(403)
      yield* attempt(() => root.mount({ mount_point: "team", type: "kv", options: { version: "2" } }))
      expect(Object.keys((yield* attempt(() => root.mounts())).data)).toContain("team/")
      yield* attempt(() => root.seal())
      expect((yield* attempt(() => root.status())).sealed).toBe(true)
      expect(statusOf(yield* Effect.flip(attempt(() => root.read("secret/data/app/db"))))).toBe(503)
      const unsealed = yield* attempt(() => root.unseal({ key: server.unsealKey }))
      expect(unsealed.sealed).toBe(false)
      expect((yield* attempt(() => root.read("secret/data/app/db"))).data.data).toEqual({ password: "p1" })
    }))

  it.scoped("node-vault: Kubernetes login through the Kubernetes dev API double", () =>
    Effect.gen(function*() {
      const server = yield* VaultDevServer.start({ rootToken })
      const { jwt, kube, root } = yield* kubernetesSetup(server.url, undefined)
      yield* attempt(() =>
        root.write("auth/kubernetes/config", { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem })
      )
      yield* attempt(() => root.addPolicy({ name: "app-reader", rules: readerPolicy }))
      // node-vault 0.12's addKubernetesRole cannot build its request body, so the role goes through write().
      yield* attempt(() =>
        root.write("auth/kubernetes/role/app", {
          bound_service_account_names: ["app"],
          bound_service_account_namespaces: ["prod"],
          policies: ["app-reader"],
          ttl: 600
        })
      )
      expect(
        (yield* attempt(() => root.getKubernetesRole({ mount_point: "kubernetes", role_name: "app" }))).data.token_ttl
      ).toBe(600)
      yield* attempt(() => root.write("secret/data/app/db", { data: { password: "p1" } }))
      // node-vault 0.12 fills the mount into its login path only from the call's own mount_point.
      const pod = NodeVault({ endpoint: server.url })
      const login = yield* attempt(() => pod.kubernetesLogin({ mount_point: "kubernetes", role: "app", jwt }))
      expect(login.auth).toMatchObject({ policies: ["app-reader", "default"], lease_duration: 600, renewable: true })
      expect((yield* attempt(() => pod.read("secret/data/app/db"))).data.data).toEqual({ password: "p1" })
      const wrongRole = yield* Effect.flip(
        attempt(() =>
          NodeVault({ endpoint: server.url }).kubernetesLogin({ mount_point: "kubernetes", role: "x", jwt })
        )
      )
      expect(statusOf(wrongRole)).toBe(400)
      expect((wrongRole as Error).message).toBe("invalid role name \"x\"")
    }))

  it.scoped("hashi-vault-js: token login, KV v2 lifecycle, LIST, capabilities from a policy, Kubernetes login", () =>
    Effect.gen(function*() {
      const { ca, server } = yield* httpsServer
      const directory = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "vault-dev-ca-"))),
        (path) => Effect.promise(() => Fs.rm(path, { recursive: true, force: true }))
      )
      const caFile = Path.join(directory, "ca.pem")
      yield* Effect.promise(() => Fs.writeFile(caFile, ca))
      // hashi-vault-js 0.5 types optional parameters as required and lists as strings; it is called as documented.
      const vault: Json = new HashiVault({
        https: true,
        cacert: caFile,
        baseUrl: `${server.url}/v1`,
        rootPath: "secret",
        timeout: 5_000
      })
      const health = yield* attempt(() => vault.healthCheck())
      expect(health).toMatchObject({ initialized: true, sealed: false, standby: false })
      expect((yield* attempt(() => vault.sealStatus())).sealed).toBe(false)
      const created = yield* attempt(() => vault.createKVSecret(rootToken, "app/db", { password: "p1" }))
      expect(created.version).toBe(1)
      const conflict = yield* Effect.flip(attempt(() => vault.createKVSecret(rootToken, "app/db", { password: "p2" })))
      expect(statusOf(conflict)).toBe(400)
      const updated = yield* attempt(() => vault.updateKVSecret(rootToken, "app/db", { password: "p2" }, 1))
      expect(updated.version).toBe(2)
      const read = yield* attempt(() => vault.readKVSecret(rootToken, "app/db"))
      expect(read.data).toEqual({ password: "p2" })
      expect((yield* attempt(() => vault.readKVSecret(rootToken, "app/db", 1))).data).toEqual({ password: "p1" })
      expect((yield* attempt(() => vault.listKVSecrets(rootToken, "app"))).keys).toEqual(["db"])
      yield* attempt(() => vault.deleteLatestVerKVSecret(rootToken, "app/db"))
      expect(statusOf(yield* Effect.flip(attempt(() => vault.readKVSecret(rootToken, "app/db"))))).toBe(404)
      yield* attempt(() => vault.undeleteVersionsKVSecret(rootToken, "app/db", [2]))
      expect((yield* attempt(() => vault.readKVSecret(rootToken, "app/db"))).data).toEqual({ password: "p2" })
      yield* attempt(() => vault.destroyVersionsKVSecret(rootToken, "app/db", [1]))
      const meta = yield* attempt(() => vault.readKVSecretMeta(rootToken, "app/db"))
      expect(meta.versions["1"].destroyed).toBe(true)

      const root = NodeVault({ endpoint: server.url, token: rootToken, requestOptions: { ca } })
      yield* attempt(() => root.addPolicy({ name: "app-reader", rules: readerPolicy }))
      const issued = yield* attempt(() => vault.createToken(rootToken, { policies: ["app-reader"], ttl: "1h" }))
      const token = issued.client_token as string
      expect((yield* attempt(() => vault.readKVSecret(token, "app/db"))).data).toEqual({ password: "p2" })
      expect(statusOf(yield* Effect.flip(attempt(() => vault.createKVSecret(token, "app/new", { a: "1" }))))).toBe(403)
      const capabilities = yield* attempt(() =>
        vault.sysCapabilitiesSelf(token, ["secret/data/app/db", "secret/data/other"])
      )
      expect(capabilities).toMatchObject({ "secret/data/app/db": ["read"], "secret/data/other": ["deny"] })
      expect((yield* attempt(() => vault.lookupSelfToken(token))).policies).toEqual(["app-reader", "default"])
      expect((yield* attempt(() => vault.renewSelfToken(token, "10m"))).lease_duration).toBe(600)
      yield* attempt(() => vault.revokeSelfToken(token))
      expect(statusOf(yield* Effect.flip(attempt(() => vault.lookupSelfToken(token))))).toBe(403)

      const { jwt, kube } = yield* kubernetesSetup(server.url, ca)
      yield* attempt(() =>
        vault.updateK8sConfig(
          rootToken,
          { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem },
          "auth/kubernetes"
        )
      )
      yield* attempt(() =>
        vault.createK8sRole(rootToken, "app", {
          bound_service_account_names: ["app"],
          bound_service_account_namespaces: ["prod"],
          token_policies: ["app-reader"],
          token_ttl: "15m"
        }, "auth/kubernetes")
      )
      expect((yield* attempt(() => vault.listK8sRoles(rootToken, "auth/kubernetes"))).keys).toEqual(["app"])
      const login = yield* attempt(() => vault.loginWithK8s("app", jwt, "auth/kubernetes"))
      expect(login).toMatchObject({
        policies: ["app-reader", "default"],
        lease_duration: 900,
        metadata: { service_account_name: "app", service_account_namespace: "prod", role: "app" }
      })
      expect((yield* attempt(() => vault.readKVSecret(login.client_token, "app/db"))).data).toEqual({ password: "p2" })
    }))
})
