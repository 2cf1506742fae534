import { make } from "@cloudtaser/kube/Kube"
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { devKubeCommand } from "../src/commands/DevKube.ts"

const cloudtaserBin = fileURLToPath(new URL("../bin/cloudtaser.js", import.meta.url))

const runKube = Command.run(devKubeCommand, { name: "cloudtaser dev", version: "0.0.0" })

const waitForFile = (file: string) =>
  Effect.promise(() => Fs.readFile(file, "utf8").catch(() => "")).pipe(
    Effect.flatMap((text) => text === "" ? Effect.sleep("20 millis").pipe(Effect.as(text)) : Effect.succeed(text)),
    Effect.repeat({ until: (text) => text !== "", times: 500 })
  )

const refused = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", () => resume(Effect.succeed(true)))
  })

describe("cloudtaser dev kube", () => {
  it.live("serves the Kubernetes dev API, writes a kubeconfig for it, and stops when interrupted", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "dev-kube-")))
      const file = Path.join(dir, "kubeconfig")
      const fiber = yield* Effect.fork(
        runKube(["node", "kube", "--listen", "127.0.0.1:0", "--kubeconfig-out", file]).pipe(
          Effect.provide(NodeContext.layer)
        )
      )
      const kubeconfig = yield* waitForFile(file)
      expect((yield* Effect.promise(() => Fs.stat(file))).mode & 0o777).toBe(0o600)
      const kube = yield* make({ kubeconfig: { _tag: "File", path: file }, context: "cloudtaser-dev" })
      const namespaces = yield* kube.namespaces.list()
      expect(namespaces.map((n) => n.metadata?.name)).toContain("default")
      const port = Number(new URL(kube.cluster.server).port)
      expect(kubeconfig).toContain(`server: "https://127.0.0.1:${port}"`)

      yield* Fiber.interrupt(fiber)
      expect(yield* refused(port)).toBe(true)
      yield* Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    }))

  it.effect("refuses a --listen that is not HOST:PORT, saying what to pass", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        runKube(["node", "kube", "--listen", "localhost"]).pipe(Effect.provide(NodeContext.layer))
      )
      expect(error).toMatchObject({ _tag: "DevKubeError", reason: "bad_listen" })
      expect(String((error as Error).message)).toContain("--listen 127.0.0.1:6443")
    }))

  it.live("as a process: prints that it is a double and its URL, and exits on SIGTERM", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "dev-kube-bin-")))
      const file = Path.join(dir, "kubeconfig")
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, [cloudtaserBin, "dev", "kube", "--listen", "127.0.0.1:0", "--kubeconfig-out", file], {
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
      )
      let stdout = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
      const exited = Effect.async<number | null>((resume) => {
        if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
        child.once("exit", (code) => resume(Effect.succeed(code)))
      })
      yield* waitForFile(file)
      yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => stdout.includes("Stop with"), times: 250 }))
      expect(stdout).toContain("a DOUBLE of the Kubernetes API server, for development and tests only")
      const kube = yield* make({ kubeconfig: { _tag: "File", path: file } })
      expect(stdout).toContain(`server:  ${kube.cluster.server}`)
      expect((yield* kube.version()).gitVersion).toMatch(/^v1\./)

      child.kill("SIGTERM")
      expect(yield* exited).toBe(0)
      expect(yield* refused(Number(new URL(kube.cluster.server).port))).toBe(true)
      yield* Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    }).pipe(Effect.scoped))
})
