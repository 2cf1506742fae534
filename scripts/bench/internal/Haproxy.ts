/**
 * haproxy as the yardstick: installed from Debian's packages when missing, configured to relay TLS to TLS in tcp
 * mode, and run as a child of the benchmark.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { type AddressInfo, createConnection, createServer } from "node:net"
import { join } from "node:path"
import { type Child, ChildError, spawnChild } from "./ChildProcess.ts"
import { sleep } from "./Sessions.ts"

/** Whether haproxy can be measured, and if not, why. */
export type HaproxyAvailability =
  | { readonly available: true; readonly version: string; readonly installedNow: boolean }
  | { readonly available: false; readonly note: string }

const run = (command: string, args: ReadonlyArray<string>, timeoutMs: number) =>
  new Promise<{ ok: boolean; output: string }>((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ ok: error === null, output: `${stdout}${stderr}`.trim() })
    )
  })

const haproxyVersion = async (): Promise<string | undefined> => {
  const { ok, output } = await run("haproxy", ["-v"], 10_000)
  return ok ? /version (\S+)/i.exec(output)?.[1] ?? output.split("\n")[0] : undefined
}

/**
 * Finds haproxy, or installs Debian's package (`apt-get update` once, then `apt-get install -y haproxy`) when this
 * runs as root. Never fails: a missing haproxy is reported as unavailable with the reason.
 */
export const ensureHaproxy = (log: (line: string) => void): Effect.Effect<HaproxyAvailability> =>
  Effect.promise(async (): Promise<HaproxyAvailability> => {
    const present = await haproxyVersion()
    if (present !== undefined) return { available: true, version: present, installedNow: false }
    if (process.getuid?.() !== 0) {
      return {
        available: false,
        note: "haproxy is not installed and the benchmark does not run as root, so it could not install it: " +
          "run `apt-get install -y haproxy` as root, then run the benchmark again"
      }
    }
    log("haproxy: not installed; running apt-get update and apt-get install -y haproxy")
    const update = await run("apt-get", ["update"], 300_000)
    if (!update.ok) {
      return {
        available: false,
        note: `apt-get update failed, so haproxy was not installed: ${lastLine(update.output)}`
      }
    }
    const install = await run("apt-get", ["install", "-y", "haproxy"], 600_000)
    if (!install.ok) {
      return { available: false, note: `apt-get install -y haproxy failed: ${lastLine(install.output)}` }
    }
    const installed = await haproxyVersion()
    return installed === undefined
      ? { available: false, note: "apt-get installed haproxy, but `haproxy -v` still does not run" }
      : { available: true, version: installed, installedNow: true }
  })

const lastLine = (output: string): string => output.split("\n").filter((line) => line.trim() !== "").pop() ?? ""

/** Asks the kernel for a free TCP port on 127.0.0.1 (haproxy cannot report a port it chose itself). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** A running haproxy and the port of its TLS frontend. */
export interface RunningHaproxy {
  readonly child: Child
  readonly port: number
}

/**
 * Writes the configuration into `dir` and starts haproxy in the foreground with one thread, so that it uses one
 * core as the beacon's single Node.js thread does. Its frontend terminates TLS with `pemPath` (certificate and key);
 * its backend opens a new TLS session to 127.0.0.1:`backendPort` for every client, without resuming TLS sessions,
 * as a bridge would connect to the beacon afresh.
 */
export const startHaproxy = (dir: string, pemPath: string, backendPort: number, maxSessions: number) =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(freePort)
    const maxconn = maxSessions + 100
    const config = [
      "global",
      `  maxconn ${maxconn}`,
      "  nbthread 1",
      "defaults",
      "  mode tcp",
      `  maxconn ${maxconn}`,
      "  timeout connect 10s",
      "  timeout client 10m",
      "  timeout server 10m",
      "frontend relay",
      `  bind 127.0.0.1:${port} ssl crt ${pemPath}`,
      "  default_backend far",
      "backend far",
      `  server far 127.0.0.1:${backendPort} ssl verify none no-ssl-reuse`,
      ""
    ].join("\n")
    const configPath = join(dir, "haproxy.cfg")
    yield* Effect.promise(() => writeFile(configPath, config))
    const child = yield* spawnChild("haproxy", "haproxy", ["-db", "-f", configPath])
    const deadline = Date.now() + 10_000
    while (!(yield* Effect.promise(() => accepts(port)))) {
      if (child.process.exitCode !== null || Date.now() > deadline) {
        return yield* new ChildError({
          reason: child.process.exitCode !== null ? "exited" : "not_ready",
          name: "haproxy",
          detail: `its frontend on port ${port} never accepted a connection; last output:\n${child.tail()}`
        })
      }
      yield* Effect.promise(() => sleep(50))
    }
    return { child, port } satisfies RunningHaproxy
  })
