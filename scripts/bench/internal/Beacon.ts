/**
 * The beacon under test: `cloudtaser-beacon` started as a child with the benchmark's Node.js, so that its CPU time
 * and memory can be read from /proc, and a session opener that pairs a bridge and a broker through it.
 */
import { Effect } from "effect"
import { createWriteStream } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { type Child, spawnNodeChild, waitForLine } from "./ChildProcess.ts"
import type { Identity } from "./Identities.ts"
import { connectPairingClient } from "./PairingClient.ts"
import { closeSession, type SessionOpener, withDeadline } from "./Sessions.ts"

/** The entry point that packaging installs as `cloudtaser-beacon`. */
export const BEACON_BIN = new URL("../../../packages/cli/bin/cloudtaser-beacon.js", import.meta.url).pathname

const PAIRING_TIMEOUT_MS = 15_000

/** A running relay that speaks the beacon protocol (the beacon or the bare relay), and the port it listens on. */
export interface RunningRelay {
  readonly child: Child
  readonly port: number
  /** Seconds from spawning the process to the line that says it listens. */
  readonly startupSeconds: number
}

/** A running beacon, its address and the address of its ops endpoints. */
export interface RunningBeacon extends RunningRelay {
  readonly addr: string
  readonly opsAddr: string
}

/** Writes the relay's certificate and key into `dir` (the key readable by the owner only) and returns their paths. */
export const writeServerCredentials = (
  dir: string,
  credentials: { readonly certPem: string; readonly keyPem: string }
) =>
  Effect.promise(async () => {
    const certPath = join(dir, "relay.crt")
    const keyPath = join(dir, "relay.key")
    await writeFile(certPath, credentials.certPem)
    await writeFile(keyPath, credentials.keyPem, { mode: 0o600 })
    return { certPath, keyPath }
  })

interface Listening {
  readonly addr: string
  readonly opsAddr: string
}

const parseListening = (line: string): Listening | undefined => {
  if (!line.includes("beacon listening")) return undefined
  try {
    const entry = JSON.parse(line) as { message?: unknown; annotations?: Record<string, unknown> }
    const message = Array.isArray(entry.message) ? entry.message.join(" ") : String(entry.message)
    const addr = entry.annotations?.["addr"]
    const opsAddr = entry.annotations?.["opsAddr"]
    if (!message.includes("beacon listening") || typeof addr !== "string") return undefined
    return { addr, opsAddr: typeof opsAddr === "string" ? opsAddr : "" }
  } catch {
    return undefined
  }
}

/**
 * Starts the beacon on 127.0.0.1 with ephemeral ports, a self-signed certificate from `credentials`, and every
 * limit on waiting clients and connections raised to `capacity`, then waits for its "beacon listening" log line.
 * `extraArgs` go to Node.js; with `logPath`, everything the beacon prints is appended to that file.
 */
export const startBeacon = (
  dir: string,
  credentials: { readonly certPem: string; readonly keyPem: string },
  capacity: number,
  extraArgs: ReadonlyArray<string> = [],
  logPath?: string
) =>
  Effect.gen(function*() {
    const { certPath, keyPath } = yield* writeServerCredentials(dir, credentials)
    const limit = String(capacity)
    // Opened before the child starts, so that it is closed only after the child has stopped writing.
    const log = logPath === undefined ? undefined : yield* Effect.acquireRelease(
      Effect.sync(() => createWriteStream(logPath, { flags: "a" })),
      (stream) =>
        Effect.async<void>((resume) => {
          stream.end(() => resume(Effect.void))
        })
    )
    const spawnedAt = performance.now()
    const child = yield* spawnNodeChild("beacon", BEACON_BIN, extraArgs, [
      "--addr",
      "127.0.0.1:0",
      "--ops-addr",
      "127.0.0.1:0",
      "--tls-cert",
      certPath,
      "--tls-key",
      keyPath,
      "--max-waiting-per-hash",
      limit,
      "--max-waiting-per-source",
      limit,
      "--max-waiting",
      limit,
      "--max-connections",
      String(capacity * 2 + 100)
    ])
    if (log !== undefined) child.onLine((line) => log.write(`${line}\n`))
    const listening = yield* waitForLine(child, parseListening, 20_000)
    const port = Number(listening.addr.slice(listening.addr.lastIndexOf(":") + 1))
    const startupSeconds = (performance.now() - spawnedAt) / 1000
    return { child, port, addr: listening.addr, opsAddr: listening.opsAddr, startupSeconds } satisfies RunningBeacon
  })

/**
 * Opens sessions through the beacon: worker `w` connects a bridge with identity `w`, waits for WAITING, then
 * connects a broker. `setupMs` runs from the broker's connect until both clients have read PAIRED.
 */
export const beaconOpener = (port: number, identities: ReadonlyArray<Identity>): SessionOpener => ({
  open: async (worker) => {
    const identity = identities[worker % identities.length]!
    const bridge = connectPairingClient(port, identity, "bridge")
    try {
      await withDeadline(bridge.waiting, PAIRING_TIMEOUT_MS, "bridge WAITING")
    } catch (error) {
      bridge.socket.destroy()
      throw error
    }
    const broker = connectPairingClient(port, identity, "broker")
    try {
      const [bridgeAt, brokerAt] = await withDeadline(
        Promise.all([bridge.paired, broker.paired]),
        PAIRING_TIMEOUT_MS,
        "PAIRED"
      )
      return {
        session: { client: broker.socket, server: bridge.socket },
        setupMs: Math.max(bridgeAt, brokerAt) - broker.startedAt
      }
    } catch (error) {
      closeSession({ client: broker.socket, server: bridge.socket })
      throw error
    }
  }
})
