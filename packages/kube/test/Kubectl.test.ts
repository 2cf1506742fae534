import { make } from "@cloudtaser/kube/Kube"
import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

const kubectlPath = process.env.KUBECTL ?? "/usr/bin/kubectl"
const hasKubectl = existsSync(kubectlPath)

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const kubectl = (kubeconfig: string, args: ReadonlyArray<string>) =>
  Effect.async<Run>((resume) => {
    const child = execFile(
      kubectlPath,
      ["--kubeconfig", kubeconfig, "--request-timeout", "20s", ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: Path.dirname(kubeconfig) }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

/** A dev API and a kubeconfig file for it in a fresh temporary directory. */
const devApiWithKubeconfig = (token?: string) =>
  Effect.gen(function*() {
    const api = yield* KubeDevApi.start()
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "kubectl-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    const file = Path.join(dir, "config")
    yield* Effect.promise(() =>
      Fs.writeFile(file, api.kubeconfig(token === undefined ? {} : { token }), { mode: 0o600 })
    )
    return { api, file }
  })

describe.skipIf(!hasKubectl)(`kubectl (${kubectlPath}) against the Kubernetes dev API`, () => {
  it.scoped("kubectl get namespaces prints the namespaces a new cluster has", () =>
    Effect.gen(function*() {
      const { file } = yield* devApiWithKubeconfig()
      const run = yield* kubectl(file, ["get", "namespaces"])
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      const lines = run.stdout.trim().split("\n").map((line) => line.split(/\s+/))
      expect(lines[0]).toEqual(["NAME", "STATUS", "AGE"])
      expect(lines.slice(1).map((cells) => cells.slice(0, 2))).toEqual([
        ["default", "Active"],
        ["kube-node-lease", "Active"],
        ["kube-public", "Active"],
        ["kube-system", "Active"]
      ])
    }))

  it.scoped("kubectl create secret generic stores base64 data that the client and kubectl get secrets read back", () =>
    Effect.gen(function*() {
      const { api, file } = yield* devApiWithKubeconfig()
      expect((yield* kubectl(file, ["create", "namespace", "shop"])).stdout.trim()).toBe("namespace/shop created")
      const created = yield* kubectl(file, [
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=k=v",
        "--from-literal=password=s3cr3t",
        "-n",
        "shop"
      ])
      expect(created.stderr).toBe("")
      expect(created.stdout.trim()).toBe("secret/db created")

      const kube = yield* make({ kubeconfig: { _tag: "Text", yaml: api.kubeconfig() } })
      const secret = yield* kube.secrets.get("shop", "db")
      expect(secret.type).toBe("Opaque")
      expect(secret.data).toEqual({ k: "dg==", password: Buffer.from("s3cr3t").toString("base64") })

      const listed = yield* kubectl(file, ["get", "secrets", "-n", "shop"])
      expect(listed.code).toBe(0)
      const rows = listed.stdout.trim().split("\n").map((line) => line.split(/\s+/))
      expect(rows[0]).toEqual(["NAME", "TYPE", "DATA", "AGE"])
      expect(rows.slice(1).map((cells) => cells.slice(0, 3))).toEqual([["db", "Opaque", "2"]])

      const json = yield* kubectl(file, ["get", "secret", "db", "-n", "shop", "-o", "json"])
      expect(JSON.parse(json.stdout)).toMatchObject({ kind: "Secret", metadata: { name: "db", namespace: "shop" } })

      const again = yield* kubectl(file, ["create", "secret", "generic", "db", "--from-literal=k=v", "-n", "shop"])
      expect(again.code).not.toBe(0)
      expect(again.stderr).toContain("already exists")
    }))

  it.scoped("kubectl create token issues a token the dev API's TokenReview accepts", () =>
    Effect.gen(function*() {
      const { api, file } = yield* devApiWithKubeconfig()
      const run = yield* kubectl(file, ["create", "token", "default", "-n", "default", "--audience", "vault"])
      expect(run.code).toBe(0)
      const kube = yield* make({ kubeconfig: { _tag: "Text", yaml: api.kubeconfig() } })
      const review = yield* kube.reviewToken(run.stdout.trim(), ["vault"])
      expect(review).toMatchObject({ authenticated: true, user: { username: "system:serviceaccount:default:default" } })
    }))

  it.scoped("kubectl config maps, service accounts and cluster role bindings", () =>
    Effect.gen(function*() {
      const { file } = yield* devApiWithKubeconfig()
      expect((yield* kubectl(file, ["create", "configmap", "settings", "--from-literal=mode=beacon"])).code).toBe(0)
      expect((yield* kubectl(file, ["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"])).stdout).toBe(
        "beacon"
      )
      expect((yield* kubectl(file, ["create", "serviceaccount", "vault-auth"])).stdout.trim()).toBe(
        "serviceaccount/vault-auth created"
      )
      const bound = yield* kubectl(file, [
        "create",
        "clusterrolebinding",
        "vault-auth-delegator",
        "--clusterrole=system:auth-delegator",
        "--serviceaccount=default:vault-auth"
      ])
      expect(bound.stdout.trim()).toBe("clusterrolebinding.rbac.authorization.k8s.io/vault-auth-delegator created")
      const listed = yield* kubectl(file, ["get", "clusterrolebindings"])
      expect(listed.stdout).toMatch(/vault-auth-delegator\s+ClusterRole\/system:auth-delegator/)
      const patched = yield* kubectl(file, [
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        JSON.stringify([{ op: "replace", path: "/data/mode", value: "reverse" }])
      ])
      expect(patched.stdout.trim()).toBe("configmap/settings patched")
      expect((yield* kubectl(file, ["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"])).stdout).toBe(
        "reverse"
      )
      expect((yield* kubectl(file, ["delete", "serviceaccount", "vault-auth"])).stdout.trim()).toBe(
        "serviceaccount \"vault-auth\" deleted"
      )
    }))

  it.scoped("kubectl auth whoami and auth can-i answer for the admin and for a service account", () =>
    Effect.gen(function*() {
      const { api, file } = yield* devApiWithKubeconfig()
      const whoami = yield* kubectl(file, ["auth", "whoami"])
      expect(whoami.stdout).toMatch(/Username\s+cloudtaser-dev:admin/)
      expect((yield* kubectl(file, ["auth", "can-i", "list", "secrets", "-n", "default"])).stdout.trim()).toBe("yes")
      const token = yield* api.issueToken({ namespace: "default", serviceAccount: "app" })
      const asApp = (args: ReadonlyArray<string>) => kubectl(file, ["--token", token, ...args])
      expect((yield* asApp(["auth", "whoami"])).stdout).toMatch(/Username\s+system:serviceaccount:default:app/)
      expect((yield* asApp(["auth", "can-i", "list", "secrets", "-n", "default"])).stdout.trim()).toBe("no")
      expect((yield* asApp(["auth", "can-i", "get", "serviceaccounts/app", "-n", "default"])).stdout.trim()).toBe("yes")
    }))

  it.scoped("kubectl get -w prints secrets as they are created", () =>
    Effect.gen(function*() {
      const { api, file } = yield* devApiWithKubeconfig()
      const watcher = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(kubectlPath, ["--kubeconfig", file, "get", "secrets", "-n", "default", "-w"], {
            env: { PATH: process.env.PATH ?? "", HOME: Path.dirname(file) },
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      let output = ""
      watcher.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
      watcher.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
      const kube = yield* make({ kubeconfig: { _tag: "Text", yaml: api.kubeconfig() } })
      yield* kube.secrets.create("default", { metadata: { name: "listed" } })
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20))).pipe(
        Effect.repeat({ until: () => /listed\s+Opaque\s+0/.test(output), times: 1500 })
      )
      // kubectl lists first and then watches from the list's resourceVersion, so every later change reaches it.
      yield* kube.secrets.create("default", { metadata: { name: "watched" }, stringData: { a: "1" } })
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20))).pipe(
        Effect.repeat({ until: () => /watched\s+Opaque\s+1/.test(output), times: 1500 })
      )
      expect(output).toMatch(/watched\s+Opaque\s+1/)
    }))

  it.scoped("kubectl with a client certificate kubeconfig", () =>
    Effect.gen(function*() {
      const { api, file } = yield* devApiWithKubeconfig()
      yield* Effect.promise(() => Fs.writeFile(file, api.kubeconfig({ clientCertificate: true }), { mode: 0o600 }))
      const whoami = yield* kubectl(file, ["auth", "whoami"])
      expect(whoami.stdout).toMatch(/Username\s+cloudtaser-dev:admin/)
      expect((yield* kubectl(file, ["get", "namespaces"])).code).toBe(0)
    }))

  it.scoped("kubectl with a token the dev API does not know is told it is not logged in", () =>
    Effect.gen(function*() {
      const { file } = yield* devApiWithKubeconfig("not-a-known-token")
      const run = yield* kubectl(file, ["get", "namespaces"])
      expect(run.code).not.toBe(0)
      expect(run.stderr).toContain("You must be logged in to the server")
    }))

  it.scoped("kubectl as a service account without a binding is forbidden", () =>
    Effect.gen(function*() {
      const { api } = yield* devApiWithKubeconfig()
      const token = yield* api.issueToken({ namespace: "default", serviceAccount: "reader" })
      const { file } = yield* Effect.succeed(null).pipe(
        Effect.zipRight(Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "kubectl-sa-")))),
        Effect.map((dir) => ({ file: Path.join(dir, "config") }))
      )
      yield* Effect.promise(() => Fs.writeFile(file, api.kubeconfig({ token }), { mode: 0o600 }))
      const run = yield* kubectl(file, ["get", "secrets", "-n", "default"])
      expect(run.code).not.toBe(0)
      expect(run.stderr).toContain("Forbidden")
      expect(run.stderr).toContain("system:serviceaccount:default:reader")
      yield* Effect.promise(() => Fs.rm(Path.dirname(file), { recursive: true, force: true }))
    }))
})

describe.skipIf(hasKubectl)("kubectl against the Kubernetes dev API", () => {
  it("is skipped: no kubectl binary at " + kubectlPath + " (set KUBECTL to its path to run these tests)", () => {})
})
