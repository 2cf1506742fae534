import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { makeServerCertificate } from "@cloudtaser/pki/Certificates"
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Tls from "node:tls"
import * as VaultDevServer from "../src/VaultDevServer.ts"
import { call } from "./VaultDevServerSupport.ts"

const rootToken = "root-token-for-tests"

/** A Vault double with Kubernetes auth pointed at a Kubernetes dev API double over HTTPS. */
const setup = (config: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const kube = yield* KubeDevApi.start()
    const vault = yield* VaultDevServer.start({ rootToken })
    const url = vault.url
    const steps = [
      yield* call(url, "POST", "sys/auth/kubernetes", { token: rootToken, body: { type: "kubernetes" } }),
      yield* call(url, "POST", "auth/kubernetes/config", {
        token: rootToken,
        body: { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, ...config }
      }),
      yield* call(url, "PUT", "sys/policies/acl/app-read", {
        token: rootToken,
        body: { policy: "path \"secret/data/app/*\" { capabilities = [\"read\"] }" }
      }),
      yield* call(url, "POST", "auth/kubernetes/role/app", {
        token: rootToken,
        body: {
          bound_service_account_names: ["app"],
          bound_service_account_namespaces: "prod,staging",
          token_policies: ["app-read"],
          token_ttl: "1h"
        }
      }),
      yield* call(url, "POST", "secret/data/app/db", { token: rootToken, body: { data: { password: "p" } } })
    ]
    expect(steps.map((step) => step.status)).toEqual([204, 204, 204, 204, 200])
    return { kube, vault, url }
  })

const login = (url: string, role: string, jwt: string) =>
  call(url, "POST", "auth/kubernetes/login", { body: { role, jwt } })

describe("VaultDevServer: Kubernetes auth (api-docs: auth/kubernetes) against the Kubernetes dev API double", () => {
  it.scoped("logs a service account in through TokenReview and gives it the role's policies", () =>
    Effect.gen(function*() {
      const { kube, url } = yield* setup()
      const jwt = yield* kube.issueToken({ namespace: "prod", serviceAccount: "app" })
      const reply = yield* login(url, "app", jwt)
      expect(reply.status).toBe(200)
      expect(reply.body.data).toBeNull()
      expect(reply.body.auth).toMatchObject({
        policies: ["app-read", "default"],
        token_policies: ["app-read", "default"],
        metadata: { role: "app", service_account_name: "app", service_account_namespace: "prod" },
        lease_duration: 3600,
        renewable: true,
        orphan: true
      })
      expect(reply.body.auth.metadata.service_account_uid).toMatch(/^[0-9a-f-]{36}$/)
      const token = reply.body.auth.client_token as string
      const secret = yield* call(url, "GET", "secret/data/app/db", { token })
      expect(secret.body.data.data).toEqual({ password: "p" })
      expect((yield* call(url, "POST", "secret/data/app/db", { token, body: { data: {} } })).status).toBe(403)
      const self = yield* call(url, "GET", "auth/token/lookup-self", { token })
      expect(self.body.data).toMatchObject({ path: "auth/kubernetes/login", ttl: 3600 })
      // The role's TTL wins over the mount's default; without one, the mount's tuned default applies.
      yield* call(url, "POST", "sys/auth/kubernetes/tune", { token: rootToken, body: { default_lease_ttl: "20m" } })
      yield* call(url, "POST", "auth/kubernetes/role/plain", {
        token: rootToken,
        body: { bound_service_account_names: "app", bound_service_account_namespaces: "prod" }
      })
      expect((yield* login(url, "plain", jwt)).body.auth.lease_duration).toBe(1200)
      const again = yield* login(url, "app", jwt)
      expect(again.body.auth.entity_id).toBe(reply.body.auth.entity_id)
    }))

  it.scoped("refuses logins as Vault words it", () =>
    Effect.gen(function*() {
      const { kube, url } = yield* setup()
      const jwt = yield* kube.issueToken({ namespace: "prod", serviceAccount: "app" })
      const otherName = yield* kube.issueToken({ namespace: "prod", serviceAccount: "intruder" })
      const otherNamespace = yield* kube.issueToken({ namespace: "dev", serviceAccount: "app" })
      const forged = `${jwt.slice(0, jwt.lastIndexOf(".") + 1)}${"A".repeat(86)}`
      const rows: Array<[string, Record<string, unknown>, number, Array<string>]> = [
        ["missing role", { jwt }, 400, ["missing role"]],
        ["missing jwt", { role: "app" }, 400, ["missing jwt"]],
        ["unknown role", { role: "nope", jwt }, 400, ["invalid role name \"nope\""]],
        ["name not bound", { role: "app", jwt: otherName }, 403, ["service account name not authorized"]],
        ["namespace not bound", { role: "app", jwt: otherNamespace }, 403, ["namespace not authorized"]],
        ["forged signature", { role: "app", jwt: forged }, 403, ["permission denied"]]
      ]
      for (const [name, body, status, errors] of rows) {
        const reply = yield* call(url, "POST", "auth/kubernetes/login", { body })
        expect({ name, status: reply.status, body: reply.body }).toEqual({ name, status, body: { errors } })
      }
      const viaGet = yield* call(url, "GET", "auth/kubernetes/login", {})
      expect(viaGet.status).toBe(405)
    }))

  it.effect("refuses a service-account token the cluster reports expired", () =>
    Effect.gen(function*() {
      const { kube, url } = yield* setup()
      const jwt = yield* kube.issueToken({ namespace: "staging", serviceAccount: "app", expirationSeconds: 600 })
      expect((yield* login(url, "app", jwt)).status).toBe(200)
      yield* TestClock.adjust("11 minutes")
      expect(yield* login(url, "app", jwt)).toEqual({ status: 403, body: { errors: ["permission denied"] } })
    }).pipe(Effect.scoped))

  it.scoped("reviews with the configured reviewer JWT, and fails closed when the cluster cannot be trusted", () =>
    Effect.gen(function*() {
      const kube = yield* KubeDevApi.start()
      const reviewer = yield* kube.issueToken({ namespace: "kube-system", serviceAccount: "vault-reviewer" })
      const { url } = yield* setup({
        kubernetes_host: kube.url,
        kubernetes_ca_cert: kube.caPem,
        token_reviewer_jwt: reviewer
      })
      const jwt = yield* kube.issueToken({ namespace: "prod", serviceAccount: "app" })
      expect((yield* login(url, "app", jwt)).status).toBe(200)
      const config = yield* call(url, "GET", "auth/kubernetes/config", { token: rootToken })
      expect(config.body.data).toMatchObject({ kubernetes_host: kube.url, token_reviewer_jwt_set: true })
      expect(JSON.stringify(config.body)).not.toContain(reviewer)
      // The login JWT was issued by another cluster than the one now reviewing.
      const stranger = yield* KubeDevApi.start()
      const strangerJwt = yield* stranger.issueToken({ namespace: "prod", serviceAccount: "app" })
      expect((yield* login(url, "app", strangerJwt)).status).toBe(403)
      // A reviewer JWT the cluster does not accept.
      yield* call(url, "POST", "auth/kubernetes/config", {
        token: rootToken,
        body: { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem, token_reviewer_jwt: strangerJwt }
      })
      expect((yield* login(url, "app", jwt)).status).toBe(403)
      // A CA that did not issue the cluster's certificate.
      yield* call(url, "POST", "auth/kubernetes/config", {
        token: rootToken,
        body: { kubernetes_host: kube.url, kubernetes_ca_cert: stranger.caPem }
      })
      expect((yield* login(url, "app", jwt)).status).toBe(403)
      yield* call(url, "POST", "auth/kubernetes/config", {
        token: rootToken,
        body: { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem }
      })
      expect((yield* login(url, "app", jwt)).status).toBe(200)
    }))

  it.scoped("checks the role's audience against the token's, with a reviewer JWT as the cluster requires", () =>
    Effect.gen(function*() {
      const kube = yield* KubeDevApi.start()
      const reviewer = yield* kube.issueToken({ namespace: "kube-system", serviceAccount: "vault-reviewer" })
      const { url } = yield* setup({
        kubernetes_host: kube.url,
        kubernetes_ca_cert: kube.caPem,
        token_reviewer_jwt: reviewer
      })
      const roleWrite = yield* call(url, "POST", "auth/kubernetes/role/aud", {
        token: rootToken,
        body: {
          bound_service_account_names: "app",
          bound_service_account_namespaces: "prod",
          audience: "vault",
          policies: "app-read"
        }
      })
      expect(roleWrite.status).toBe(204)
      const forVault = yield* kube.issueToken({ namespace: "prod", serviceAccount: "app", audiences: ["vault"] })
      const forApi = yield* kube.issueToken({ namespace: "prod", serviceAccount: "app" })
      expect((yield* login(url, "aud", forVault)).status).toBe(200)
      expect((yield* login(url, "aud", forApi)).status).toBe(403)
      // Without a reviewer JWT the login JWT itself must authenticate the review, and one meant for Vault cannot.
      yield* call(url, "POST", "auth/kubernetes/config", {
        token: rootToken,
        body: { kubernetes_host: kube.url, kubernetes_ca_cert: kube.caPem }
      })
      expect((yield* login(url, "aud", forVault)).status).toBe(403)
    }))

  it.scoped("keeps config and roles as the API docs describe", () =>
    Effect.gen(function*() {
      const { url } = yield* setup()
      const t = rootToken
      const rows: Array<[string, string, string, Record<string, unknown> | undefined, number]> = [
        ["config without host", "POST", "auth/kubernetes/config", { kubernetes_ca_cert: "" }, 400],
        ["config with a bad CA", "POST", "auth/kubernetes/config", {
          kubernetes_host: "https://x",
          kubernetes_ca_cert: "x"
        }, 400],
        ["role without names", "POST", "auth/kubernetes/role/r", { bound_service_account_namespaces: ["a"] }, 400],
        ["role without namespaces", "POST", "auth/kubernetes/role/r", { bound_service_account_names: ["a"] }, 400],
        ["role with both wildcards", "POST", "auth/kubernetes/role/r", {
          bound_service_account_names: "*",
          bound_service_account_namespaces: "*"
        }, 400],
        ["role", "POST", "auth/kubernetes/role/r", {
          bound_service_account_names: "*",
          bound_service_account_namespaces: "prod",
          ttl: 600
        }, 204],
        ["list roles", "LIST", "auth/kubernetes/role", undefined, 200],
        ["delete role", "DELETE", "auth/kubernetes/role/r", undefined, 204],
        ["read deleted role", "GET", "auth/kubernetes/role/r", undefined, 404]
      ]
      for (const [name, method, path, body, status] of rows) {
        const reply = yield* call(url, method, path, { token: t, ...(body === undefined ? {} : { body }) })
        expect({ name, status: reply.status }).toEqual({ name, status })
      }
      const role = yield* call(url, "GET", "auth/kubernetes/role/app", { token: t })
      expect(role.body.data).toMatchObject({
        bound_service_account_names: ["app"],
        bound_service_account_namespaces: ["prod", "staging"],
        token_policies: ["app-read"],
        token_ttl: 3600,
        alias_name_source: "serviceaccount_uid"
      })
      const roles = yield* call(url, "GET", "auth/kubernetes/role?list=true", { token: t })
      expect(roles.body.data.keys).toEqual(["app"])
    }))

  it.scoped("serves over HTTPS with the certificate it is given", () =>
    Effect.gen(function*() {
      const certificate = yield* makeServerCertificate({ commonName: "vault-dev", ipAddresses: ["127.0.0.1"] })
      const vault = yield* VaultDevServer.start({
        rootToken,
        tls: { certPem: certificate.certPem, keyPem: certificate.keyPem }
      })
      expect(vault.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
      const health = yield* call(vault.url, "GET", "sys/health", { ca: certificate.certPem })
      expect(health.status).toBe(200)
      yield* call(vault.url, "POST", "secret/data/tls", {
        ca: certificate.certPem,
        token: rootToken,
        body: { data: { a: 1 } }
      })
      const listed = yield* call(vault.url, "LIST", "secret/metadata/", { ca: certificate.certPem, token: rootToken })
      expect(listed.body.data.keys).toEqual(["tls"])
      const group = yield* Effect.async<string | undefined>((resume) => {
        const url = new URL(vault.url)
        const socket = Tls.connect({ host: url.hostname, port: Number(url.port), ca: certificate.certPem }, () => {
          const info = socket.getEphemeralKeyInfo() as { readonly name?: string } | null
          resume(Effect.succeed(info?.name))
          socket.destroy()
        })
        socket.on("error", (error) => resume(Effect.die(error)))
      })
      expect(group).toBe("X25519MLKEM768")
    }))
})
