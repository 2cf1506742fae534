import { Kube, make } from "@cloudtaser/kube/Kube"
import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { makeCa, makeLeaf } from "@cloudtaser/pki/Certificates"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Redacted, TestClock } from "effect"
import * as Https from "node:https"
import * as Net from "node:net"

const fromText = (yaml: string, context?: string) =>
  make({ kubeconfig: { _tag: "Text", yaml }, ...(context === undefined ? {} : { context }) })

/** Runs `effect`, expecting it to fail, and returns the failure. */
const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flip(effect).pipe(Effect.tap((error) => expect(error).toBeDefined()))

/** A port that refuses connections: bound, read back, then closed. */
const closedPort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(address.port)))
  })
})

/** An HTTPS server that completes the handshake, takes each request and never answers it. */
const silentServer = Effect.gen(function*() {
  const ca = yield* makeCa({ commonName: "silent test CA" })
  const leaf = yield* makeLeaf({ ca, role: "server", commonName: "silent", ipAddresses: ["127.0.0.1"] })
  const sockets = new Set<Net.Socket>()
  const held = { requests: 0 }
  const server = yield* Effect.acquireRelease(
    Effect.async<Https.Server>((resume) => {
      const server = Https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, () => {
        held.requests++
      })
      server.on("connection", (socket: Net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  )
  return { caPem: ca.certPem, sockets, held, port: (server.address() as Net.AddressInfo).port }
})

describe("Kube against the Kubernetes dev API", () => {
  it.layer(Kube.Test)((it) => {
    it.effect("reports the context's API server, its CA and the server version", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        const api = yield* KubeDevApi
        expect(kube.cluster).toEqual({
          context: "cloudtaser-dev",
          server: api.url,
          caPem: api.caPem,
          insecureSkipTlsVerify: false
        })
        const version = yield* kube.version()
        expect(version).toMatchObject({ major: "1", minor: "32", gitVersion: expect.stringMatching(/^v1\.32\./) })
      }))

    it.effect("creates, reads, lists, applies and deletes namespaces", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        const created = yield* kube.namespaces.create({ metadata: { name: "ns-one", labels: { team: "a" } } })
        expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/)
        expect((yield* kube.namespaces.get("ns-one")).status?.phase).toBe("Active")
        expect((yield* kube.namespaces.list()).map((n) => n.metadata?.name)).toContain("ns-one")
        const applied = yield* kube.namespaces.apply({ metadata: { name: "ns-one", labels: { team: "b" } } })
        expect(applied.action).toBe("replaced")
        expect(applied.object.metadata?.labels?.team).toBe("b")
        expect((yield* kube.namespaces.apply({ metadata: { name: "ns-two" } })).action).toBe("created")
        yield* kube.namespaces.delete("ns-one")
        const gone = yield* failure(kube.namespaces.get("ns-one"))
        expect(gone._tag).toBe("KubeNotFound")
        expect(gone.message).toContain("get namespace ns-one")
        expect(gone.message).toContain("context \"cloudtaser-dev\"")
      }))

    it.effect("creates, replaces, applies and deletes secrets, with stringData merged into data", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        const created = yield* kube.secrets.create("default", {
          metadata: { name: "broker-tls" },
          type: "kubernetes.io/tls",
          data: { "tls.crt": Buffer.from("cert").toString("base64") },
          stringData: { "tls.key": "key" }
        })
        expect(created.data).toEqual({ "tls.crt": "Y2VydA==", "tls.key": "a2V5" })
        expect(created.type).toBe("kubernetes.io/tls")
        const exists = yield* failure(kube.secrets.create("default", { metadata: { name: "broker-tls" } }))
        expect(exists._tag).toBe("KubeAlreadyExists")
        const replaced = yield* kube.secrets.replace("default", { ...created, stringData: { "tls.key": "new" } })
        expect(replaced.data?.["tls.key"]).toBe(Buffer.from("new").toString("base64"))
        const stale = yield* failure(kube.secrets.replace("default", created))
        expect(stale._tag).toBe("KubeConflict")
        expect(stale.message).toContain("update secret default/broker-tls")

        const first = yield* kube.secrets.apply("default", { metadata: { name: "config" }, stringData: { a: "1" } })
        const second = yield* kube.secrets.apply("default", { metadata: { name: "config" }, stringData: { a: "2" } })
        expect([first.action, second.action]).toEqual(["created", "replaced"])
        expect(second.object.metadata?.uid).toBe(first.object.metadata?.uid)
        expect((yield* kube.secrets.get("default", "config")).data).toEqual({ a: "Mg==" })
        expect((yield* kube.secrets.list("default")).map((s) => s.metadata?.name)).toEqual(["broker-tls", "config"])
        yield* kube.secrets.apply("default", { metadata: { name: "labelled", labels: { app: "broker" } } })
        const selected = yield* kube.secrets.list("default", { labelSelector: "app=broker" })
        expect(selected.map((s) => s.metadata?.name)).toEqual(["labelled"])
        const byName = yield* kube.secrets.list("default", { fieldSelector: "metadata.name=config" })
        expect(byName.map((s) => s.metadata?.name)).toEqual(["config"])
        yield* kube.secrets.delete("default", "config")
        expect((yield* failure(kube.secrets.get("default", "config")))._tag).toBe("KubeNotFound")
        expect((yield* failure(kube.secrets.delete("default", "config")))._tag).toBe("KubeNotFound")
      }))

    it.effect("a secret in a namespace that does not exist is not found, naming the namespace", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        const error = yield* failure(kube.secrets.create("nowhere", { metadata: { name: "x" } }))
        expect(error._tag).toBe("KubeNotFound")
        expect(error.message).toContain("namespaces \"nowhere\" not found")
      }))

    it.effect("an invalid object is refused with the server's reason", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        const error = yield* failure(kube.configMaps.create("default", { metadata: { name: "Bad_Name" } }))
        expect(error._tag).toBe("KubeRequestFailed")
        expect(error.message).toContain("422 Invalid")
        expect(error.message).toContain("create config map default/Bad_Name")
      }))

    it.effect("config maps and service accounts", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        yield* kube.configMaps.create("default", { metadata: { name: "settings" }, data: { mode: "beacon" } })
        yield* kube.configMaps.apply("default", { metadata: { name: "settings" }, data: { mode: "reverse" } })
        expect((yield* kube.configMaps.get("default", "settings")).data).toEqual({ mode: "reverse" })
        expect((yield* kube.configMaps.list("default")).length).toBe(1)
        yield* kube.configMaps.create("default", { metadata: { name: "frozen" }, data: { a: "1" }, immutable: true })
        const frozen = yield* failure(
          kube.configMaps.apply("default", { metadata: { name: "frozen" }, data: { a: "2" }, immutable: true })
        )
        expect(frozen.message).toContain("field is immutable when `immutable` is set")
        const relabelled = yield* kube.configMaps.apply("default", {
          metadata: { name: "frozen", labels: { still: "allowed" } },
          data: { a: "1" },
          immutable: true
        })
        expect(relabelled.object.metadata?.labels).toEqual({ still: "allowed" })
        yield* kube.configMaps.delete("default", "frozen")
        yield* kube.configMaps.delete("default", "settings")
        expect(yield* kube.configMaps.list("default")).toEqual([])

        const account = yield* kube.serviceAccounts.create("default", { metadata: { name: "broker" } })
        expect(account.metadata?.namespace).toBe("default")
        const replaced = yield* kube.serviceAccounts.replace("default", {
          ...account,
          automountServiceAccountToken: false
        })
        expect(replaced.automountServiceAccountToken).toBe(false)
        expect((yield* kube.serviceAccounts.list("default")).map((a) => a.metadata?.name)).toEqual([
          "broker",
          "default"
        ])
        expect((yield* kube.serviceAccounts.apply("default", { metadata: { name: "broker" } })).action).toBe("replaced")
        yield* kube.serviceAccounts.delete("default", "broker")
        expect((yield* failure(kube.serviceAccounts.get("default", "broker")))._tag).toBe("KubeNotFound")
      }))

    it.effect("cluster role bindings, recreated when applied with another role", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        const binding = (role: string) => ({
          metadata: { name: "vault-token-reviewer" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
          subjects: [{ kind: "ServiceAccount", name: "vault", namespace: "default" }]
        })
        const created = yield* kube.clusterRoleBindings.create(binding("system:auth-delegator"))
        expect(created.roleRef.name).toBe("system:auth-delegator")
        expect((yield* kube.clusterRoleBindings.get("vault-token-reviewer")).subjects?.[0]?.name).toBe("vault")
        const same = yield* kube.clusterRoleBindings.apply(binding("system:auth-delegator"))
        expect(same.object.metadata?.uid).toBe(created.metadata?.uid)
        const moved = yield* kube.clusterRoleBindings.apply(binding("view"))
        expect(moved.object.roleRef.name).toBe("view")
        expect(moved.object.metadata?.uid).not.toBe(created.metadata?.uid)
        const replaceRole = yield* failure(
          kube.clusterRoleBindings.replace({ ...moved.object, roleRef: binding("edit").roleRef })
        )
        expect(replaceRole._tag).toBe("KubeRequestFailed")
        expect((yield* kube.clusterRoleBindings.list()).map((b) => b.metadata?.name)).toEqual(["vault-token-reviewer"])
        yield* kube.clusterRoleBindings.delete("vault-token-reviewer")
        const gone = yield* failure(kube.clusterRoleBindings.get("vault-token-reviewer"))
        expect(gone.message).toContain("get cluster role binding vault-token-reviewer")
      }))

    it.effect("requests a token and reviews it, as Vault's Kubernetes auth would", () =>
      Effect.gen(function*() {
        const kube = yield* Kube
        yield* kube.serviceAccounts.create("default", { metadata: { name: "app" } })
        const issued = yield* kube.requestToken("default", "app", { audiences: ["vault"], expirationSeconds: 900 })
        expect(String(issued.token)).not.toContain(Redacted.value(issued.token))
        expect(issued.expiresAt.getTime()).toBeGreaterThan(0)
        const review = yield* kube.reviewToken(issued.token, ["vault"])
        expect(review).toMatchObject({
          authenticated: true,
          user: {
            username: "system:serviceaccount:default:app",
            groups: ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
          },
          audiences: ["vault"],
          error: undefined
        })
        const wrongAudience = yield* kube.reviewToken(issued.token, ["elsewhere"])
        expect(wrongAudience.authenticated).toBe(false)
        expect(wrongAudience.user).toBeUndefined()
        const garbage = yield* kube.reviewToken("garbage")
        expect(garbage).toMatchObject({ authenticated: false, error: expect.stringContaining("invalid bearer token") })
        const bound = yield* kube.requestToken("default", "app", { boundPod: { name: "web-0", uid: "pod-uid" } })
        expect((yield* kube.reviewToken(bound.token)).user?.extra).toMatchObject({
          "authentication.kubernetes.io/pod-name": ["web-0"],
          "authentication.kubernetes.io/pod-uid": ["pod-uid"]
        })
        const missing = yield* failure(kube.requestToken("default", "ghost"))
        expect(missing._tag).toBe("KubeNotFound")
      }))

    it.effect("forbidden: a service account without a binding may not read secrets, and is told how to check", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi
        const token = yield* api.issueToken({ namespace: "default", serviceAccount: "limited" })
        const limited = yield* fromText(api.kubeconfig({ token }))
        const error = yield* failure(limited.secrets.list("default"))
        expect(error._tag).toBe("KubeForbidden")
        expect(error.message).toContain("list secrets in default")
        expect(error.message).toContain("system:serviceaccount:default:limited")
        expect(error.message).toContain("kubectl auth can-i list secrets -n default --context cloudtaser-dev")
        expect(error.message).not.toContain(token)
        expect(JSON.stringify(error)).not.toContain(token)
        // what the account may do still works
        expect((yield* limited.serviceAccounts.get("default", "limited")).metadata?.name).toBe("limited")
        expect((yield* limited.reviewToken(token)).authenticated).toBe(true)
      }))

    it.effect("authenticates with a client certificate, and refuses one from another cluster's CA", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi
        const withCertificate = api.kubeconfig({ clientCertificate: true })
        expect(withCertificate).toContain("client-certificate-data")
        expect(withCertificate).not.toContain(api.adminToken)
        const client = yield* fromText(withCertificate)
        expect((yield* client.namespaces.list()).length).toBeGreaterThan(0)

        const other = yield* KubeDevApi.start()
        const foreignCertificate = other.kubeconfig({ clientCertificate: true }).split("\n").filter((line) =>
          line.includes("client-")
        )
        const mixed = withCertificate.split("\n").filter((line) => !line.includes("client-")).map((line) =>
          line.includes("user:") && !line.includes("user: ") ? [line, ...foreignCertificate].join("\n") : line
        ).join("\n")
        expect(mixed).toContain(foreignCertificate[0])
        const error = yield* failure((yield* fromText(mixed)).namespaces.list())
        expect(error._tag).toBe("KubeUnauthorized")
      }).pipe(Effect.scoped))

    it.effect("unauthorized: a token the server does not know", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi
        const client = yield* fromText(api.kubeconfig({ token: "a-token-from-elsewhere" }))
        const error = yield* failure(client.version())
        expect(error._tag).toBe("KubeUnauthorized")
        expect(error.message).toContain(api.url)
        expect(error.message).toContain("cloudtaser-dev")
        expect(error.message).not.toContain("a-token-from-elsewhere")
      }))

    it.effect("untrusted certificate: a kubeconfig with another server's CA", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi
        const other = yield* KubeDevApi.start()
        const mixed = api.kubeconfig().replace(
          Buffer.from(api.caPem).toString("base64"),
          Buffer.from(other.caPem).toString("base64")
        )
        const client = yield* fromText(mixed)
        const error = yield* failure(client.namespaces.list())
        expect(error._tag).toBe("KubeUnreachable")
        expect(error).toMatchObject({ reason: "untrusted_certificate" })
        expect(error.message).toContain("certificate-authority-data")
      }).pipe(Effect.scoped))
  })

  it.scoped("offers the hybrid post-quantum key exchange: it reaches a server that accepts nothing else", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const ca = yield* makeCa({ commonName: "post-quantum test CA" })
      const leaf = yield* makeLeaf({ ca, role: "server", commonName: "pq", ipAddresses: ["127.0.0.1"] })
      const server = yield* Effect.acquireRelease(
        Effect.async<Https.Server>((resume) => {
          const server = Https.createServer(
            { cert: leaf.certPem, key: leaf.keyPem, ecdhCurve: "X25519MLKEM768" },
            (_request, response) => {
              response.setHeader("content-type", "application/json")
              response.end(JSON.stringify({ major: "1", minor: "32", gitVersion: "v1.32.0", platform: "linux/amd64" }))
            }
          )
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const port = (server.address() as Net.AddressInfo).port
      const kubeconfig = api.kubeconfig()
        .replace(api.url, `https://127.0.0.1:${port}`)
        .replace(Buffer.from(api.caPem).toString("base64"), Buffer.from(ca.certPem).toString("base64"))
      const version = yield* (yield* fromText(kubeconfig)).version()
      expect(version.gitVersion).toBe("v1.32.0")
    }))

  it.scoped("unreachable: connection refused names the server address", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const port = yield* closedPort
      const client = yield* fromText(api.kubeconfig().replace(api.url, `https://127.0.0.1:${port}`))
      const error = yield* failure(client.secrets.get("default", "x"))
      expect(error._tag).toBe("KubeUnreachable")
      expect(error).toMatchObject({ reason: "refused", server: `https://127.0.0.1:${port}` })
      expect(error.message).toContain(`https://127.0.0.1:${port}`)
      expect(error.message).toContain("connection refused")
    }))

  it.scoped("a server that never answers times out, and the request is abandoned", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const silent = yield* silentServer
      const kubeconfig = api.kubeconfig()
        .replace(api.url, `https://127.0.0.1:${silent.port}`)
        .replace(Buffer.from(api.caPem).toString("base64"), Buffer.from(silent.caPem).toString("base64"))
      const client = yield* fromText(kubeconfig)
      const fiber = yield* Effect.fork(client.version())
      // The request reaches the server before the clock moves.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10))).pipe(
        Effect.repeat({ until: () => silent.held.requests > 0, times: 200 })
      )
      expect(silent.held.requests).toBe(1)
      yield* TestClock.adjust("31 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error).toMatchObject({ _tag: "KubeUnreachable", reason: "timeout" })
      // The abandoned request's connection is closed rather than left open.
      const waitForClose = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10))).pipe(
        Effect.repeat({ until: () => silent.sockets.size === 0, times: 200 })
      )
      yield* waitForClose
      expect(silent.sockets.size).toBe(0)
    }))

  describe("loading kubeconfigs", () => {
    it.scoped("picks a named context, and names the contexts there are when it is missing", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const client = yield* fromText(api.kubeconfig(), "cloudtaser-dev")
        expect(client.cluster.server).toBe(api.url)
        const error = yield* failure(fromText(api.kubeconfig(), "production"))
        expect(error).toMatchObject({ _tag: "KubeConfigError", reason: "no_context" })
        expect(error.message).toContain("\"production\"")
        expect(error.message).toContain("cloudtaser-dev")
      }))

    it.scoped("credentials from an exec plugin, as cloud providers' kubeconfigs use", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const fs = yield* Effect.promise(() => import("node:fs/promises"))
        const os = yield* Effect.promise(() => import("node:os"))
        const dir = yield* Effect.acquireRelease(
          Effect.promise(() => fs.mkdtemp(`${os.tmpdir()}/kube-exec-`)),
          (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
        )
        const plugin = `${dir}/credentials.sh`
        const credential = {
          apiVersion: "client.authentication.k8s.io/v1",
          kind: "ExecCredential",
          status: { token: api.adminToken }
        }
        yield* Effect.promise(() =>
          fs.writeFile(plugin, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`, { mode: 0o700 })
        )
        const kubeconfig = api.kubeconfig().replace(
          `    token: "${api.adminToken}"`,
          [
            "    exec:",
            "      apiVersion: client.authentication.k8s.io/v1",
            `      command: ${JSON.stringify(plugin)}`,
            "      interactiveMode: Never"
          ].join("\n")
        )
        expect(kubeconfig).not.toContain(api.adminToken)
        const kube = yield* fromText(kubeconfig)
        expect((yield* kube.namespaces.get("kube-system")).metadata?.name).toBe("kube-system")
      }))

    it.scoped("a credential plugin that fails or cannot be run is named, with what it said", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const fs = yield* Effect.promise(() => import("node:fs/promises"))
        const os = yield* Effect.promise(() => import("node:os"))
        const dir = yield* Effect.acquireRelease(
          Effect.promise(() => fs.mkdtemp(`${os.tmpdir()}/kube-exec-`)),
          (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
        )
        const plugin = `${dir}/expired.sh`
        yield* Effect.promise(() =>
          fs.writeFile(plugin, "#!/bin/sh\necho 'error: your login has expired' >&2\nexit 1\n", { mode: 0o700 })
        )
        const withPlugin = (command: string) =>
          api.kubeconfig().replace(
            `    token: "${api.adminToken}"`,
            [
              "    exec:",
              "      apiVersion: client.authentication.k8s.io/v1",
              `      command: ${JSON.stringify(command)}`
            ]
              .join("\n")
          )
        const expired = yield* failure((yield* fromText(withPlugin(plugin))).version())
        expect(expired).toMatchObject({ _tag: "KubeCredentialsFailed", command: plugin })
        expect(expired.message).toContain("your login has expired")
        const missing = yield* failure((yield* fromText(withPlugin(`${dir}/not-installed`))).version())
        expect(missing).toMatchObject({ _tag: "KubeCredentialsFailed" })
        expect(missing.message).toContain("cannot be run: ENOENT")
      }))

    it.effect("a kubeconfig that is not YAML is refused without quoting it", () =>
      Effect.gen(function*() {
        const text = "clusters:\n- name: x\n  user:\n    token: secret-token-value\n   bad: [indentation\n"
        const error = yield* failure(fromText(text))
        expect(error).toMatchObject({ _tag: "KubeConfigError", reason: "unreadable" })
        expect(error.message).not.toContain("secret-token-value")
        expect(JSON.stringify(error)).not.toContain("secret-token-value")
      }))

    it.effect("a missing file is reported with its path", () =>
      Effect.gen(function*() {
        const error = yield* failure(make({ kubeconfig: { _tag: "File", path: "/nonexistent/kubeconfig" } }))
        expect(error).toMatchObject({ _tag: "KubeConfigError", reason: "unreadable" })
        expect(error.message).toContain("/nonexistent/kubeconfig")
      }))

    it.effect("a layer from a kubeconfig file", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi
        const fs = yield* Effect.promise(() => import("node:fs/promises"))
        const os = yield* Effect.promise(() => import("node:os"))
        const dir = yield* Effect.promise(() => fs.mkdtemp(`${os.tmpdir()}/kube-`))
        const file = `${dir}/config`
        yield* Effect.promise(() => fs.writeFile(file, api.kubeconfig(), { mode: 0o600 }))
        const names = yield* Effect.flatMap(Kube, (kube) => kube.namespaces.list()).pipe(
          Effect.provide(Kube.layer({ kubeconfig: { _tag: "File", path: file }, context: "cloudtaser-dev" }))
        )
        expect(names.map((n) => n.metadata?.name)).toContain("kube-system")
        yield* Effect.promise(() => fs.rm(dir, { recursive: true }))
      }).pipe(Effect.provide(Layer.scoped(KubeDevApi, KubeDevApi.start()))))
  })
})
