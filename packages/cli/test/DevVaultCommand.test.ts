import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Console, Deferred, Effect, Fiber } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { devVaultCommand, DevVaultError } from "../src/commands/DevVault.ts"

const run = Command.run(devVaultCommand, { name: "cloudtaser dev vault", version: "0.0.0" })

/** Runs the command in this process and hands back what it printed once it printed its URL. */
const startCommand = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const printed: Array<string> = []
    const ready = yield* Deferred.make<string>()
    const current = yield* Console.consoleWith(Effect.succeed)
    const console: Console.Console = {
      ...current,
      log: (...items: ReadonlyArray<unknown>) =>
        Effect.sync(() => {
          const line = items.map(String).join(" ")
          printed.push(line)
          const match = /VAULT_ADDR=(\S+)/.exec(line)
          if (match !== null) Deferred.unsafeDone(ready, Effect.succeed(match[1]!))
        })
    }
    const fiber = yield* run(["node", "cloudtaser", ...args]).pipe(
      Effect.withConsole(console),
      Effect.provide(NodeContext.layer),
      Effect.forkScoped
    )
    const url = yield* Deferred.await(ready).pipe(Effect.raceFirst(Fiber.await(fiber).pipe(Effect.as(""))))
    return { url, printed, fiber }
  })

const health = (url: string, token: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": token } })
    return response.status
  })

describe("cloudtaser dev vault", () => {
  it.scoped("serves the Vault dev server double until interrupted, and says it is a double", () =>
    Effect.gen(function*() {
      const { fiber, printed, url } = yield* startCommand(["--listen", "127.0.0.1:0", "--root-token", "dev-root"])
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(printed.join("\n")).toContain("DOUBLE")
      expect(printed.join("\n")).toContain("VAULT_TOKEN=dev-root")
      expect(yield* health(url, "dev-root")).toBe(200)
      expect(yield* health(url, "other")).toBe(403)
      yield* Fiber.interrupt(fiber)
      const after = yield* Effect.promise(() => fetch(`${url}/v1/sys/health`).then(() => "open", () => "closed"))
      expect(after).toBe("closed")
    }))

  it.scoped("refuses a certificate without its key and an unreadable listen address", () =>
    Effect.gen(function*() {
      const directory = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "dev-vault-"))),
        (path) => Effect.promise(() => Fs.rm(path, { recursive: true, force: true }))
      )
      const cert = Path.join(directory, "cert.pem")
      yield* Effect.promise(() => Fs.writeFile(cert, "not a certificate"))
      const { fiber } = yield* startCommand(["--tls-cert", cert])
      const withoutKey = yield* Effect.flip(Fiber.join(fiber))
      expect(withoutKey).toBeInstanceOf(DevVaultError)
      expect((withoutKey as DevVaultError).message).toContain("--tls-key")
      const bad = yield* startCommand(["--listen", "nowhere"])
      const badListen = yield* Effect.flip(Fiber.join(bad.fiber))
      expect((badListen as DevVaultError).reason).toBe("bad_listen")
    }))
})
