// Starts the beacon process with the Node.js options it is tuned for. They take effect only when Node.js starts, so
// the process replaces itself (execve) with one started with them: the process id, signals and standard streams stay
// the same, and it costs one extra Node.js start of a few tens of milliseconds.
import { fileURLToPath } from "node:url"

const openSslConfig = fileURLToPath(new URL("./beacon-openssl.cnf", import.meta.url))

/**
 * The beacon's Node.js options, each with the prefix that tells whether the user already chose a value of their own.
 * - OpenSSL configuration: no TLS session tickets (see beacon-openssl.cnf).
 * - Heap sizes for a relay. Every 16 KiB the relay reads arrives in a new buffer outside the JavaScript heap, and
 *   V8 counts those buffers against the heap's limit until a scavenge frees them. With V8's defaults (a limit that
 *   follows the small live heap, 16 MiB semi-spaces) a busy relay ran a full collection of the whole heap every
 *   100 ms or so, about a third of its CPU. A 128 MiB initial heap leaves room for the buffers in flight, and 2 MiB
 *   semi-spaces free them in short scavenges (about a millisecond each) soon after they are relayed. Counting the
 *   buffers in the heap's global limit, rather than answering each few dozen MB of them with a full collection of
 *   their own, cut the CPU per byte by about a quarter before the heap sizes were set.
 */
const beaconOptions = [
  { prefix: "--openssl-", option: `--openssl-config=${openSslConfig}` },
  { prefix: "--max-semi-space-size", option: "--max-semi-space-size=2" },
  { prefix: "--initial-heap-size", option: "--initial-heap-size=128" },
  {
    prefix: "--external-memory-accounted-in-global-limit",
    option: "--external-memory-accounted-in-global-limit"
  }
]

const chosenByUser = (prefix) =>
  process.execArgv.some((arg) => arg.startsWith(prefix)) ||
  (process.env.NODE_OPTIONS ?? "").split(/\s+/).some((arg) => arg.startsWith(prefix)) ||
  (prefix === "--openssl-" && process.env.OPENSSL_CONF !== undefined)

/**
 * Re-executes this process with every beacon option the user has not set a value for. Returns only when there is
 * nothing to add (also the case in the re-executed process) or the platform cannot re-execute; the options make the
 * beacon cheaper to run, not correct, so it then runs without them.
 */
export const useBeaconRuntime = () => {
  const missing = beaconOptions.filter(({ prefix }) => !chosenByUser(prefix)).map(({ option }) => option)
  if (missing.length === 0 || typeof process.execve !== "function") return
  try {
    process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)])
  } catch {
    // A sandbox that forbids execve: run on without the options.
  }
}
