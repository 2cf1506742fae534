/**
 * Measures the beacon relay against haproxy doing the same TLS-to-TLS relaying on this machine, and prints the
 * figures as one JSON line on stdout (progress goes to stderr). `--quick` runs smaller counts for a smoke test;
 * `--only beacon|haproxy` measures one side; `--cpu-prof-dir DIR` writes a V8 CPU profile of each beacon process
 * into DIR; `--beacon-node-option OPT` (repeatable) passes a Node.js option to the beacon; `--beacon-log FILE` keeps
 * what the beacon prints. See README.md.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Data, Duration, Effect } from "effect"
import { writeFile } from "node:fs/promises"
import { cpus, loadavg } from "node:os"
import { join } from "node:path"
import { beaconOpener, startBeacon } from "./internal/Beacon.ts"
import { keepCoresAwake, scopedTempDir } from "./internal/ChildProcess.ts"
import { ensureHaproxy, type HaproxyAvailability, startHaproxy } from "./internal/Haproxy.ts"
import { type Identity, makeIdentities, makeLoopbackServerCertificate } from "./internal/Identities.ts"
import {
  confirmPath,
  interleavedRoundTrips,
  memoryPerHeld,
  progress,
  type RoundTripFigures,
  setupLatencies,
  setupRate,
  throughput,
  warmUp
} from "./internal/Measure.ts"
import { connectPairingClient } from "./internal/PairingClient.ts"
import { openFileLimit } from "./internal/Proc.ts"
import { destroyAllSockets, type SessionOpener, withDeadline } from "./internal/Sessions.ts"
import { nowMs, percentile, ratio, round } from "./internal/Stats.ts"
import { startTlsBackend, type TlsBackend } from "./internal/TlsBackend.ts"

const GiB = 1024 ** 3
const MiB = 1024 ** 2

const usage = "usage: node scripts/bench/beacon.ts [--quick] [--only beacon|haproxy] [--cpu-prof-dir DIR] " +
  "[--beacon-node-option OPTION]... [--beacon-log FILE]"

interface Flags {
  quick: boolean
  only: "beacon" | "haproxy" | undefined
  cpuProfDir: string | undefined
  beaconNodeOptions: Array<string>
  beaconLog: string | undefined
}

/** Reads the flags, or returns what is wrong with them. */
const parseFlags = (argv: ReadonlyArray<string>): Flags | string => {
  const flags: Flags = {
    quick: false,
    only: undefined,
    cpuProfDir: undefined,
    beaconNodeOptions: [],
    beaconLog: undefined
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    if (flag === "--quick") {
      flags.quick = true
      continue
    }
    if (!["--only", "--cpu-prof-dir", "--beacon-node-option", "--beacon-log"].includes(flag)) {
      return `unknown flag: ${flag}`
    }
    const value = argv[++i]
    if (value === undefined) return `${flag} needs a value`
    if (flag === "--only" && (value === "beacon" || value === "haproxy")) flags.only = value
    else if (flag === "--cpu-prof-dir") flags.cpuProfDir = value
    else if (flag === "--beacon-node-option") flags.beaconNodeOptions.push(value)
    else if (flag === "--beacon-log") flags.beaconLog = value
    else return `--only takes beacon or haproxy, not ${value}`
  }
  return flags
}

const parsed = parseFlags(process.argv.slice(2))
if (typeof parsed === "string") {
  process.stderr.write(`${parsed}\n${usage}\n`)
  process.exit(2)
}
const { beaconLog, beaconNodeOptions, cpuProfDir, only, quick } = parsed

/** The counts of one run. */
const plan = quick
  ? {
    mode: "quick",
    inFlight: 100,
    warmupSessions: 30,
    latencyCount: 100,
    rateTotal: 300,
    roundTrips: 500,
    roundTripWarmup: 100,
    transferBytes: 64 * MiB,
    transferWarmupBytes: 8 * MiB,
    heldCount: 300,
    settleMs: 1_000,
    phaseDeadlineMs: 30_000,
    runDeadline: Duration.minutes(3)
  }
  : {
    mode: "full",
    inFlight: 100,
    warmupSessions: 200,
    latencyCount: 1_000,
    rateTotal: 3_000,
    roundTrips: 5_000,
    roundTripWarmup: 500,
    transferBytes: 1 * GiB,
    transferWarmupBytes: 64 * MiB,
    heldCount: 5_000,
    settleMs: 2_000,
    phaseDeadlineMs: 120_000,
    runDeadline: Duration.minutes(25)
  }

/** A measurement step that failed; its message ends up in the JSON next to the figures that could be taken. */
class StepError extends Data.TaggedError("StepError")<{ readonly step: string; readonly detail: string }> {
  override get message(): string {
    return `${this.step}: ${this.detail}`
  }
}

const step = <A>(name: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: () => {
      progress(name)
      return run()
    },
    catch: (cause) => new StepError({ step: name, detail: cause instanceof Error ? cause.message : String(cause) })
  })

const kib = (bytes: number) => round(bytes / 1024, 1)

const beaconArgs = (label: string): ReadonlyArray<string> => [
  ...beaconNodeOptions,
  ...(cpuProfDir === undefined
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=beacon-${label}.cpuprofile`])
]

interface Shared {
  readonly dir: string
  readonly server: { readonly certPem: string; readonly keyPem: string }
  readonly identities: ReadonlyArray<Identity>
  readonly backend: TlsBackend
  readonly haproxy: HaproxyAvailability
  readonly haproxyPem: string
  /** Undefined when the round-trip phase failed. */
  readonly roundTrips: RoundTrips | undefined
}

interface RoundTrips {
  readonly direct: RoundTripFigures
  readonly beacon: RoundTripFigures | undefined
  readonly haproxy: RoundTripFigures | undefined
}

/** The round-trip figures of one relay path, and what it adds to the direct path. */
const roundTripFields = (path: RoundTripFigures | undefined, direct: RoundTripFigures | undefined) => ({
  roundTripMedianUs: path === undefined ? null : round(path.medianUs, 1),
  roundTripP99Us: path === undefined ? null : round(path.p99Us, 1),
  roundTripRoundMediansUs: path === undefined ? null : path.roundMediansUs.map((us) => round(us, 1)),
  addedRoundTripUs: path === undefined || direct === undefined ? null : round(path.medianUs - direct.medianUs, 1)
})

/**
 * 64-byte round trips over the direct path, the beacon and haproxy, taking turns in rounds on a fresh beacon and
 * haproxy that do nothing else meanwhile, with every core kept awake by a lowest-priority busy loop.
 */
const measureRoundTrips = (
  dir: string,
  server: Shared["server"],
  identities: ReadonlyArray<Identity>,
  backend: TlsBackend,
  haproxyPem: string | undefined
) =>
  Effect.scoped(Effect.gen(function*() {
    const paths: Array<SessionOpener> = [backend.opener(backend.port)]
    let beaconPath: number | undefined
    let haproxyPath: number | undefined
    if (only !== "haproxy") {
      const beacon = yield* startBeacon(dir, server, 1_000, beaconArgs("roundtrips"), beaconLog)
      beaconPath = paths.push(beaconOpener(beacon.port, identities)) - 1
    }
    if (haproxyPem !== undefined) {
      const haproxy = yield* startHaproxy(dir, haproxyPem, backend.port, 1_000)
      haproxyPath = paths.push(backend.opener(haproxy.port)) - 1
    }
    yield* keepCoresAwake(cpus().length, 120)
    const figures = yield* step(
      `round trips of 64 bytes: ${ROUNDS} rounds of ${plan.roundTrips / ROUNDS} on ${paths.length} paths in turn`,
      () => interleavedRoundTrips(paths, ROUNDS, plan.roundTrips / ROUNDS, plan.roundTripWarmup)
    )
    return {
      direct: figures[0]!,
      beacon: beaconPath === undefined ? undefined : figures[beaconPath],
      haproxy: haproxyPath === undefined ? undefined : figures[haproxyPath]
    } satisfies RoundTrips
  }))

const ROUNDS = 5

/** Every beacon figure; each of the three phases runs on a fresh beacon process. */
const measureBeacon = (shared: Shared) =>
  Effect.gen(function*() {
    const capacity = plan.heldCount + plan.inFlight + 100

    const traffic = yield* Effect.scoped(Effect.gen(function*() {
      const beacon = yield* startBeacon(shared.dir, shared.server, capacity, beaconArgs("traffic"), beaconLog)
      progress(`beacon listening on ${beacon.addr} (pid ${beacon.child.pid})`)
      const opener = beaconOpener(beacon.port, shared.identities)
      yield* step("beacon: warm-up pairings", () => warmUp(opener, plan.warmupSessions, 10))
      const latencies = yield* step(
        `beacon: ${plan.latencyCount} pairings one at a time`,
        () => setupLatencies(opener, plan.latencyCount, plan.phaseDeadlineMs)
      )
      const rate = yield* step(
        `beacon: ${plan.rateTotal} pairings, ${plan.inFlight} in flight`,
        () => setupRate(opener, beacon.child.pid, plan.inFlight, plan.rateTotal, plan.phaseDeadlineMs)
      )
      const bulk = yield* step(
        `beacon: ${plan.transferBytes / MiB} MiB through one session`,
        () => throughput(opener, beacon.child.pid, plan.transferBytes, plan.transferWarmupBytes)
      )
      const openFiles = openFileLimit(beacon.child.pid)
      return { latencies, rate, bulk, startupSeconds: beacon.startupSeconds, openFiles }
    }))

    const waiting = yield* Effect.scoped(Effect.gen(function*() {
      const beacon = yield* startBeacon(shared.dir, shared.server, capacity, beaconArgs("waiting"), beaconLog)
      const opener = beaconOpener(beacon.port, shared.identities)
      yield* step("beacon: warm-up pairings", () => warmUp(opener, plan.warmupSessions, 10))
      return yield* step(
        `beacon: memory with ${plan.heldCount} waiting bridges`,
        () =>
          memoryPerHeld(
            beacon.child.pid,
            plan.heldCount,
            plan.inFlight,
            plan.phaseDeadlineMs,
            plan.settleMs,
            waitingBridge(beacon.port, shared.identities)
          )
      )
    }))

    const paired = yield* Effect.scoped(Effect.gen(function*() {
      const beacon = yield* startBeacon(shared.dir, shared.server, capacity, beaconArgs("paired"), beaconLog)
      const opener = beaconOpener(beacon.port, shared.identities)
      yield* step("beacon: warm-up pairings", () => warmUp(opener, plan.warmupSessions, 10))
      return yield* step(
        `beacon: memory with ${plan.heldCount} paired sessions`,
        () =>
          memoryPerHeld(
            beacon.child.pid,
            plan.heldCount,
            plan.inFlight,
            plan.phaseDeadlineMs,
            plan.settleMs,
            heldSession(opener)
          )
      )
    }))

    return {
      pairingLatencyP50Ms: round(percentile(traffic.latencies, 50), 3),
      pairingLatencyP99Ms: round(percentile(traffic.latencies, 99), 3),
      pairings: traffic.latencies.length,
      pairsPerSecond: round(traffic.rate.perSecond, 1),
      pairsInFlight: plan.inFlight,
      pairsCompleted: traffic.rate.completed,
      pairsFailed: traffic.rate.failed,
      ...(traffic.rate.firstError === undefined ? {} : { pairsFirstError: traffic.rate.firstError }),
      beaconCpuMsPerPairing: round(traffic.rate.relayCpuMsPerSetup, 3),
      beaconCpuShareWhilePairing: round(traffic.rate.relayCpuShare, 2),
      loadGeneratorCpuShareWhilePairing: round(traffic.rate.loadGeneratorCpuShare, 2),
      loadGeneratorCpuMsPerPairing: round(traffic.rate.loadGeneratorCpuMsPerSetup, 3),
      relayThroughputMiBps: round(traffic.bulk.mibPerSecond, 1),
      relayBytes: traffic.bulk.bytes,
      cpuSecondsPerGiB: round(traffic.bulk.cpuSecondsPerGiB, 3),
      ...roundTripFields(shared.roundTrips?.beacon, shared.roundTrips?.direct),
      memoryPerWaitingClientKiB: kib(waiting.bytesPerHeld),
      waitingClients: waiting.held,
      memoryPerPairedSessionKiB: kib(paired.bytesPerHeld),
      pairedSessions: paired.held,
      idleRssMiB: round(waiting.rssBeforeBytes / MiB, 1),
      startupSeconds: round(traffic.startupSeconds, 2),
      openFileLimit: traffic.openFiles,
      ...(waiting.failed + paired.failed === 0 ? {} : {
        heldFailures: waiting.failed + paired.failed,
        heldFirstError: waiting.firstError ?? paired.firstError
      })
    }
  })

/** Connects one bridge and hands its socket to be held open once it has read WAITING. */
const waitingBridge = (port: number, identities: ReadonlyArray<Identity>) => async (worker: number) => {
  const bridge = connectPairingClient(port, identities[worker % identities.length]!, "bridge")
  try {
    await withDeadline(bridge.waiting, 15_000, "bridge WAITING")
  } catch (error) {
    bridge.socket.destroy()
    throw error
  }
  return [bridge.socket]
}

/** Opens one session, sends a byte across it, and hands both sockets to be held open. */
const heldSession = (opener: SessionOpener) => async (worker: number) => {
  const { session } = await opener.open(worker)
  try {
    await confirmPath(session)
  } catch (error) {
    session.client.destroy()
    session.server.destroy()
    throw error
  }
  return [session.client, session.server]
}

/** The same figures for haproxy relaying TLS to the in-process TLS backend. */
const measureHaproxy = (shared: Shared) =>
  Effect.gen(function*() {
    const availability = shared.haproxy
    if (!availability.available) return { skipped: true as const, note: availability.note }
    const pemPath = shared.haproxyPem

    const traffic = yield* Effect.scoped(Effect.gen(function*() {
      const haproxy = yield* startHaproxy(shared.dir, pemPath, shared.backend.port, plan.heldCount + plan.inFlight)
      progress(`haproxy ${availability.version} listening on 127.0.0.1:${haproxy.port} (pid ${haproxy.child.pid})`)
      const opener = shared.backend.opener(haproxy.port)
      yield* step("haproxy: warm-up sessions", () => warmUp(opener, plan.warmupSessions, 10))
      const latencies = yield* step(
        `haproxy: ${plan.latencyCount} sessions one at a time`,
        () => setupLatencies(opener, plan.latencyCount, plan.phaseDeadlineMs)
      )
      const rate = yield* step(
        `haproxy: ${plan.rateTotal} sessions, ${plan.inFlight} in flight`,
        () => setupRate(opener, haproxy.child.pid, plan.inFlight, plan.rateTotal, plan.phaseDeadlineMs)
      )
      const bulk = yield* step(
        `haproxy: ${plan.transferBytes / MiB} MiB through one session`,
        () => throughput(opener, haproxy.child.pid, plan.transferBytes, plan.transferWarmupBytes)
      )
      return { latencies, rate, bulk }
    }))

    const idle = yield* Effect.scoped(Effect.gen(function*() {
      const haproxy = yield* startHaproxy(shared.dir, pemPath, shared.backend.port, plan.heldCount + plan.inFlight)
      const opener = shared.backend.opener(haproxy.port)
      yield* step("haproxy: warm-up sessions", () => warmUp(opener, plan.warmupSessions, 10))
      return yield* step(
        `haproxy: memory with ${plan.heldCount} idle sessions`,
        () =>
          memoryPerHeld(
            haproxy.child.pid,
            plan.heldCount,
            plan.inFlight,
            plan.phaseDeadlineMs,
            plan.settleMs,
            heldSession(opener)
          )
      )
    }))

    return {
      version: availability.version,
      installedNow: availability.installedNow,
      sessionSetupLatencyP50Ms: round(percentile(traffic.latencies, 50), 3),
      sessionSetupLatencyP99Ms: round(percentile(traffic.latencies, 99), 3),
      sessionsPerSecond: round(traffic.rate.perSecond, 1),
      sessionsInFlight: plan.inFlight,
      sessionsCompleted: traffic.rate.completed,
      sessionsFailed: traffic.rate.failed,
      ...(traffic.rate.firstError === undefined ? {} : { sessionsFirstError: traffic.rate.firstError }),
      haproxyCpuMsPerSession: round(traffic.rate.relayCpuMsPerSetup, 3),
      haproxyCpuShareWhileSettingUp: round(traffic.rate.relayCpuShare, 2),
      loadGeneratorCpuShareWhileSettingUp: round(traffic.rate.loadGeneratorCpuShare, 2),
      loadGeneratorCpuMsPerSession: round(traffic.rate.loadGeneratorCpuMsPerSetup, 3),
      relayThroughputMiBps: round(traffic.bulk.mibPerSecond, 1),
      relayBytes: traffic.bulk.bytes,
      cpuSecondsPerGiB: round(traffic.bulk.cpuSecondsPerGiB, 3),
      ...roundTripFields(shared.roundTrips?.haproxy, shared.roundTrips?.direct),
      memoryPerIdleSessionKiB: kib(idle.bytesPerHeld),
      idleSessions: idle.held,
      ...(idle.failed === 0 ? {} : { heldFailures: idle.failed, heldFirstError: idle.firstError })
    }
  })

const reference = {
  source: "measured earlier on this machine with Node.js 24; the targets the beacon is held to",
  haproxy: { cpuSecondsPerGiB: 2.26, addedRoundTripUs: 50, memoryPerIdleSessionKB: 38, sessionsPerSecond: 450 },
  bareNodeRelay: {
    description: "a bare 150-line Node.js relay speaking the same protocol",
    cpuSecondsPerGiB: 3.12,
    addedRoundTripUs: 77,
    memoryPerPairKB: 108,
    pairsPerSecond: 300,
    pairingLatencyP99Ms: 3.2
  }
}

const definitions = {
  pairingLatencyP50Ms: "pairings made one at a time (a bridge waits, then a broker connects): time from the broker's " +
    "tls.connect call until both the bridge and the broker have read PAIRED, 50th percentile; includes the broker's " +
    "TLS handshake, CHALLENGE, HELLO signing and the beacon's proof and certificate checks",
  pairingLatencyP99Ms: "the same, 99th percentile (nearest rank)",
  pairsPerSecond: "completed pairings per second of wall time with pairsInFlight workers, each connecting a bridge, " +
    "waiting for WAITING, connecting a broker, waiting for both PAIRED, closing both, and starting over",
  beaconCpuMsPerPairing: "user+system CPU milliseconds of the beacon during the pairsPerSecond run, per completed " +
    "pairing: the cost of one pairing, and 1000 / it the rate one saturated core could reach; unlike the rates it " +
    "barely depends on what else the machine runs",
  idleRssMiB: "the beacon's VmRSS after start-up and warm-up pairings, before the waiting clients connect",
  startupSeconds: "from spawning the beacon process to its \"beacon listening\" log line",
  relayThroughputMiBps:
    "relayBytes written by the broker into one paired session in 64 KiB writes with backpressure, " +
    "divided by the time from the first write until the bridge has read the last byte",
  cpuSecondsPerGiB: "user+system CPU seconds of the relay process (/proc/<pid>/stat) during that transfer, per GiB",
  addedRoundTripUs: "median round trip of one 64-byte message echoed by the far end through the relay, minus the " +
    "median of the same echo over a direct TLS connection to the in-process TLS backend (direct.roundTripMedianUs)",
  roundTripCores: "while the round trips run, one busy loop per core at nice 19 keeps idle cores from sleeping: " +
    "otherwise the wake-up of a sleeping core, not the relay, dominates every hop through another process",
  roundTripRoundMediansUs: "the round trips run in rounds, the direct path, the beacon and haproxy taking turns, " +
    "so that all three meet the same changes in the machine's load; these are the medians of each round, and if " +
    "they differ much the load changed during the run",
  memoryPerWaitingClientKiB: "increase of the beacon's VmRSS (/proc/<pid>/status) after waitingClients bridges " +
    "have read WAITING, divided by waitingClients; read after a 2 s settle on a fresh beacon warmed up by pairings",
  memoryPerPairedSessionKiB: "the same with pairedSessions paired sessions (two sockets each at the beacon) that " +
    "have each carried one byte from broker to bridge",
  direct: "the load generator's own ceiling: the same sessions, round trips and transfer over one TLS connection " +
    "straight to the in-process TLS backend, with no relay; its CPU figure is the load generator's for both ends",
  haproxy: "haproxy 1 thread, tcp mode, TLS frontend (bind ssl crt) and TLS backend (server ssl verify none " +
    "no-ssl-reuse) to a TLS server inside the load generator; a session is set up when the backend has read the " +
    "client's first 8 bytes; memoryPerIdleSessionKiB counts idle client-haproxy-backend sessions",
  ratioToHaproxy: "beacon figure divided by haproxy figure (setups/s: pairs per second over sessions per second; " +
    "memory: per paired session over per idle session); above 1 is worse for costs and better for rates",
  units: "KiB = 1024 bytes, MiB = 2^20 bytes, GiB = 2^30 bytes; reference KB figures are as they were reported"
}

const program = Effect.gen(function*() {
  const startedAt = nowMs()
  const loadAtStart = loadavg()[0]!
  const dir = yield* scopedTempDir("cloudtaser-bench-")
  progress(`${plan.mode} run: making certificates`)
  const server = yield* makeLoopbackServerCertificate
  const identities = yield* makeIdentities(plan.inFlight)
  const backend = yield* startTlsBackend({ key: server.keyPem, cert: server.certPem })

  const haproxyAvailability = only === "beacon"
    ? { available: false as const, note: "not measured: --only beacon" }
    : yield* ensureHaproxy(progress)
  const haproxyPem = join(dir, "haproxy.pem")
  yield* Effect.promise(() => writeFile(haproxyPem, server.certPem + server.keyPem, { mode: 0o600 }))

  const directOpener = backend.opener(backend.port)
  yield* step("direct: warm-up sessions", () => warmUp(directOpener, plan.warmupSessions, 10))
  const directRate = yield* step(
    `direct: ${plan.rateTotal} sessions, ${plan.inFlight} in flight`,
    () => setupRate(directOpener, process.pid, plan.inFlight, plan.rateTotal, plan.phaseDeadlineMs)
  )
  const directBulk = yield* step(
    `direct: ${plan.transferBytes / MiB} MiB through one session`,
    () => throughput(directOpener, process.pid, plan.transferBytes, plan.transferWarmupBytes)
  )
  const roundTrips = yield* measureRoundTrips(
    dir,
    server,
    identities,
    backend,
    haproxyAvailability.available ? haproxyPem : undefined
  ).pipe(
    Effect.map((figures): RoundTrips | undefined => figures),
    Effect.catchAll((error) =>
      Effect.sync(() => {
        progress(`round trips failed: ${error.message}`)
        return undefined
      })
    )
  )
  const shared: Shared = {
    dir,
    server,
    identities,
    backend,
    haproxy: haproxyAvailability,
    haproxyPem,
    roundTrips
  }

  const beacon = only === "haproxy"
    ? { skipped: true as const, note: "not measured: --only haproxy" }
    : yield* measureBeacon(shared).pipe(
      Effect.catchAll((error) => Effect.succeed({ failed: true as const, error: error.message }))
    )
  const haproxy = yield* measureHaproxy(shared).pipe(
    Effect.catchAll((error) => Effect.succeed({ failed: true as const, error: error.message }))
  )

  const { addedRoundTripUs: _zero, ...directRoundTrips } = roundTripFields(roundTrips?.direct, roundTrips?.direct)
  const ratios = "failed" in beacon || "skipped" in beacon || "failed" in haproxy || "skipped" in haproxy ? null : {
    cpuSecondsPerGiB: ratio(beacon.cpuSecondsPerGiB, haproxy.cpuSecondsPerGiB),
    addedRoundTripUs: ratio(beacon.addedRoundTripUs, haproxy.addedRoundTripUs),
    memoryPerSessionKiB: ratio(beacon.memoryPerPairedSessionKiB, haproxy.memoryPerIdleSessionKiB),
    setupsPerSecond: ratio(beacon.pairsPerSecond, haproxy.sessionsPerSecond),
    cpuMsPerSetup: ratio(beacon.beaconCpuMsPerPairing, haproxy.haproxyCpuMsPerSession),
    relayThroughputMiBps: ratio(beacon.relayThroughputMiBps, haproxy.relayThroughputMiBps)
  }
  const bare = reference.bareNodeRelay
  const targets = "failed" in beacon || "skipped" in beacon ? null : {
    cpuSecondsPerGiB: { beacon: beacon.cpuSecondsPerGiB, target: bare.cpuSecondsPerGiB, lowerIsBetter: true },
    addedRoundTripUs: { beacon: beacon.addedRoundTripUs, target: bare.addedRoundTripUs, lowerIsBetter: true },
    memoryPerPairedSessionKiB: {
      beacon: beacon.memoryPerPairedSessionKiB,
      target: bare.memoryPerPairKB,
      lowerIsBetter: true
    },
    pairsPerSecond: { beacon: beacon.pairsPerSecond, target: bare.pairsPerSecond, lowerIsBetter: false },
    pairingLatencyP99Ms: { beacon: beacon.pairingLatencyP99Ms, target: bare.pairingLatencyP99Ms, lowerIsBetter: true }
  }
  const vsBareNodeRelay = targets === null ? null : Object.fromEntries(
    Object.entries(targets).map(([name, { beacon, lowerIsBetter, target }]) => [
      name,
      { beacon, target, meets: beacon === null ? null : lowerIsBetter ? beacon <= target : beacon >= target }
    ])
  )

  return {
    benchmark: "cloudtaser-beacon",
    mode: plan.mode,
    node: process.version,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      loadAverage1mAtStart: round(loadAtStart, 2),
      loadAverage1mAtEnd: round(loadavg()[0]!, 2),
      note: "figures are trustworthy only when the load average without the benchmark is well below 1"
    },
    durationSeconds: round((nowMs() - startedAt) / 1000, 1),
    beacon,
    haproxy,
    direct: {
      ...directRoundTrips,
      sessionsPerSecond: round(directRate.perSecond, 1),
      throughputMiBps: round(directBulk.mibPerSecond, 1),
      loadGeneratorCpuSecondsPerGiB: round(directBulk.cpuSecondsPerGiB, 3)
    },
    ratioToHaproxy: ratios,
    vsBareNodeRelay,
    reference,
    loadGenerator: {
      openFileLimit: openFileLimit(process.pid),
      layout: "one Node.js process (this one) holds every client socket and the TLS backend, at most " +
        `${2 * plan.heldCount} sockets (${plan.heldCount} paired sessions, or ${plan.heldCount} haproxy clients and ` +
        "their backend ends); the beacon and haproxy run as child processes with their own open-file limits; waiting " +
        "clients and paired sessions are measured one after the other, each on a fresh beacon process"
    },
    definitions
  }
})

const main = program.pipe(
  Effect.scoped,
  Effect.ensuring(Effect.sync(destroyAllSockets)),
  Effect.timeoutFail({
    duration: plan.runDeadline,
    onTimeout: () =>
      new StepError({ step: "benchmark", detail: `did not finish within ${Duration.format(plan.runDeadline)}` })
  }),
  Effect.tap((result) =>
    Effect.sync(() => {
      process.stdout.write(`${JSON.stringify(result)}\n`)
      if ("failed" in result.beacon || "failed" in result.haproxy) process.exitCode = 1
    })
  ),
  Effect.tapErrorCause((cause) => Effect.sync(() => progress(`failed: ${cause.toString()}`)))
)

NodeRuntime.runMain(main, { disablePrettyLogger: true, disableErrorReporting: true })
