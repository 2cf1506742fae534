/**
 * The bare relay (BareRelay.ts) started as a child with the benchmark's Node.js, like the beacon, so that the two
 * are measured the same way; the beacon's session opener pairs clients through it, as it speaks the same protocol.
 */
import { Effect } from "effect"
import { writeServerCredentials } from "./Beacon.ts"
import type { RunningRelay } from "./Beacon.ts"
import { spawnNodeChild, waitForLine } from "./ChildProcess.ts"

/** The bare relay's program. */
export const BARE_RELAY_SCRIPT = new URL("./BareRelay.ts", import.meta.url).pathname

const parseListening = (line: string): number | undefined => {
  try {
    const port = (JSON.parse(line) as { listening?: unknown }).listening
    return typeof port === "number" ? port : undefined
  } catch {
    return undefined
  }
}

/**
 * Starts the bare relay on 127.0.0.1 with an ephemeral port and the same certificate as the beacon, and waits for
 * the line that gives its port. `nodeArgs` go to Node.js.
 */
export const startBareRelay = (
  dir: string,
  credentials: { readonly certPem: string; readonly keyPem: string },
  nodeArgs: ReadonlyArray<string> = []
) =>
  Effect.gen(function*() {
    const { certPath, keyPath } = yield* writeServerCredentials(dir, credentials)
    const spawnedAt = performance.now()
    const child = yield* spawnNodeChild("bare relay", BARE_RELAY_SCRIPT, nodeArgs, [
      "--tls-cert",
      certPath,
      "--tls-key",
      keyPath
    ])
    const port = yield* waitForLine(child, parseListening, 20_000)
    return { child, port, startupSeconds: (performance.now() - spawnedAt) / 1000 } satisfies RunningRelay
  })
