/**
 * Measures the beacon relay against a bare Node.js relay of the same protocol and against haproxy doing the same
 * TLS-to-TLS relaying, all in the same run on this machine, and prints the figures as one JSON line on stdout
 * (progress goes to stderr). `--quick` runs smaller counts for a smoke test; `--only beacon,bare,haproxy` (any of
 * them) measures only those; `--cpu-prof-dir DIR` writes a V8 CPU profile of each beacon and bare relay process into
 * DIR; `--beacon-node-option OPT` (repeatable) passes a Node.js option to the beacon; `--beacon-log FILE` keeps what
 * the beacon prints. See README.md.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Data, Duration, Effect } from "effect"
import type { Scope } from "effect"
import { writeFile } from "node:fs/promises"
import { cpus, loadavg } from "node:os"
import { join } from "node:path"
import type { Duplex } from "node:stream"
import { startBareRelay } from "./internal/BareRelayChild.ts"
import { beaconOpener, type RunningRelay, startBeacon } from "./internal/Beacon.ts"
import { type ChildError, keepCoresAwake, scopedTempDir } from "./internal/ChildProcess.ts"
import { ensureHaproxy, type HaproxyAvailability, startHaproxy } from "./internal/Haproxy.ts"
import { type Identity, makeIdentities, makeLoopbackServerCertificate } from "./internal/Identities.ts"
import {
  confirmPath,
  interleavedRoundTrips,
  type MemoryPerHeld,
  memoryPerHeld,
  progress,
  type RoundTripFigures,
  setupLatencies,
  type SetupRate,
  setupRate,
  type Throughput,
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

const usage = "usage: node scripts/bench/beacon.ts [--quick] [--only beacon,bare,haproxy] [--cpu-prof-dir DIR] " +
  "[--beacon-node-option OPTION]... [--beacon-log FILE]"

/** What a run can measure; `--only` picks some of them. */
const SIDES = ["beacon", "bare", "haproxy"] as const
type Side = (typeof SIDES)[number]

interface Flags {
  quick: boolean
  only: ReadonlySet<Side> | undefined
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
    if (flag === "--only") {
      const sides = value.split(",")
      const unknown = sides.find((side) => !(SIDES as ReadonlyArray<string>).includes(side))
      if (unknown !== undefined) return `--only takes a comma-separated list of ${SIDES.join(", ")}, not ${unknown}`
      flags.only = new Set(sides as Array<Side>)
    } else if (flag === "--cpu-prof-dir") flags.cpuProfDir = value
    else if (flag === "--beacon-node-option") flags.beaconNodeOptions.push(value)
    else flags.beaconLog = value
  }
  return flags
}

const parsed = parseFlags(process.argv.slice(2))
if (typeof parsed === "string") {
  process.stderr.write(`${parsed}\n${usage}\n`)
  process.exit(2)
}
const { beaconLog, beaconNodeOptions, cpuProfDir, only, quick } = parsed
const measures = (side: Side): boolean => only === undefined || only.has(side)
const notMeasured = { skipped: true as const, note: `not measured: --only ${[...(only ?? [])].join(",")}` }

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

const cpuProfArgs = (name: string): ReadonlyArray<string> =>
  cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`]

interface Shared {
  readonly dir: string
  readonly server: { readonly certPem: string; readonly keyPem: string }
  readonly identities: ReadonlyArray<Identity>
  readonly backend: TlsBackend
  readonly haproxy: HaproxyAvailability
  readonly haproxyPem: string
  /** The relays that speak the beacon protocol and are to be measured, in the order they take turns. */
  readonly pairingRelays: ReadonlyArray<PairingRelay>
  /** Undefined when the round-trip phase failed. */
  readonly roundTrips: RoundTrips | undefined
}

/** A relay that speaks the beacon protocol (the beacon or the bare relay), and how to start a fresh process of it. */
interface PairingRelay {
  readonly side: "beacon" | "bare"
  /** How progress lines name it. */
  readonly label: string
  /** Starts a fresh process for the phase `phase`, able to hold `capacity` waiting clients. */
  readonly start: (phase: string, capacity: number) => Effect.Effect<RunningRelay, ChildError, Scope.Scope>
}

const pairingRelays = (dir: string, server: Shared["server"]): ReadonlyArray<PairingRelay> =>
  [
    {
      side: "beacon" as const,
      label: "beacon",
      start: (phase: string, capacity: number) =>
        startBeacon(dir, server, capacity, [...beaconNodeOptions, ...cpuProfArgs(`beacon-${phase}`)], beaconLog)
    },
    {
      side: "bare" as const,
      label: "bare relay",
      start: (phase: string) => startBareRelay(dir, server, cpuProfArgs(`bare-${phase}`))
    }
  ].filter((relay) => measures(relay.side))

interface RoundTrips {
  readonly direct: RoundTripFigures
  readonly beacon: RoundTripFigures | undefined
  readonly bare: RoundTripFigures | undefined
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
 * 64-byte round trips over the direct path, the beacon, the bare relay and haproxy, taking turns in rounds on fresh
 * relay processes that do nothing else meanwhile, with every core kept awake by a lowest-priority busy loop.
 */
const measureRoundTrips = (
  relays: ReadonlyArray<PairingRelay>,
  identities: ReadonlyArray<Identity>,
  backend: TlsBackend,
  haproxyPem: string | undefined,
  dir: string
) =>
  Effect.scoped(Effect.gen(function*() {
    const paths: Array<SessionOpener> = [backend.opener(backend.port)]
    const pathOf = new Map<PairingRelay["side"] | "haproxy", number>()
    for (const relay of relays) {
      const running = yield* relay.start("roundtrips", 1_000)
      pathOf.set(relay.side, paths.push(beaconOpener(running.port, identities)) - 1)
    }
    if (haproxyPem !== undefined) {
      const haproxy = yield* startHaproxy(dir, haproxyPem, backend.port, 1_000)
      pathOf.set("haproxy", paths.push(backend.opener(haproxy.port)) - 1)
    }
    yield* keepCoresAwake(cpus().length, 120)
    const figures = yield* step(
      `round trips of 64 bytes: ${ROUNDS} rounds of ${plan.roundTrips / ROUNDS} on ${paths.length} paths in turn`,
      () => interleavedRoundTrips(paths, ROUNDS, plan.roundTrips / ROUNDS, plan.roundTripWarmup)
    )
    const of = (side: PairingRelay["side"] | "haproxy") => {
      const path = pathOf.get(side)
      return path === undefined ? undefined : figures[path]
    }
    return { direct: figures[0]!, beacon: of("beacon"), bare: of("bare"), haproxy: of("haproxy") } satisfies RoundTrips
  }))

const ROUNDS = 5

/** One pairing relay's measurement so far: the first failure ends it, and its later steps are skipped. */
interface RelayRun {
  readonly relay: PairingRelay
  failure: string | undefined
}

/**
 * Runs `run` for each relay in turn, in the order given, skipping relays that have failed; a failure is kept as the
 * relay's result and does not stop the others.
 */
const inTurn = <A, E extends { readonly message: string }>(
  runs: ReadonlyArray<RelayRun>,
  run: (relay: PairingRelay, index: number) => Effect.Effect<A, E, Scope.Scope>
): Effect.Effect<Array<A | undefined>, never, Scope.Scope> =>
  Effect.forEach(
    runs,
    (state, index) =>
      state.failure !== undefined ? Effect.succeed(undefined) : run(state.relay, index).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() => {
            state.failure = error.message
            progress(`${state.relay.label} failed: ${error.message}`)
            return undefined
          })
        )
      )
  )

/** What the traffic phase measured on one relay. */
interface Traffic {
  readonly latencies: ReadonlyArray<number>
  readonly rate: SetupRate
  readonly bulk: Throughput
  readonly startupSeconds: number
  readonly openFiles: number | null
}

/**
 * Every figure of the relays that speak the beacon protocol, taken the same way on each. The traffic phase runs one
 * process of each relay side by side and lets them take turns in every step (warm-up, latency, rate, transfer), so
 * that they meet the same drift in the machine's load; waiting and paired memory are measured on fresh processes,
 * one relay after the other.
 */
const measurePairingRelays = (shared: Shared) =>
  Effect.gen(function*() {
    const capacity = plan.heldCount + plan.inFlight + 100
    const runs: ReadonlyArray<RelayRun> = shared.pairingRelays.map((relay) => ({ relay, failure: undefined }))

    const traffic = yield* Effect.scoped(Effect.gen(function*() {
      const started = yield* inTurn(runs, (relay) =>
        Effect.gen(function*() {
          const running = yield* relay.start("traffic", capacity)
          progress(`${relay.label} listening on 127.0.0.1:${running.port} (pid ${running.child.pid})`)
          const opener = beaconOpener(running.port, shared.identities)
          yield* step(`${relay.label}: warm-up pairings`, () => warmUp(opener, plan.warmupSessions, 10))
          return { running, opener }
        }))
      const on = (index: number) => started[index]!
      const latencies = yield* inTurn(runs, (relay, i) =>
        step(
          `${relay.label}: ${plan.latencyCount} pairings one at a time`,
          () => setupLatencies(on(i).opener, plan.latencyCount, plan.phaseDeadlineMs)
        ))
      const rates = yield* inTurn(runs, (relay, i) =>
        step(
          `${relay.label}: ${plan.rateTotal} pairings, ${plan.inFlight} in flight`,
          () => setupRate(on(i).opener, on(i).running.child.pid, plan.inFlight, plan.rateTotal, plan.phaseDeadlineMs)
        ))
      const bulks = yield* inTurn(runs, (relay, i) =>
        step(
          `${relay.label}: ${plan.transferBytes / MiB} MiB through one session`,
          () => throughput(on(i).opener, on(i).running.child.pid, plan.transferBytes, plan.transferWarmupBytes)
        ))
      return runs.map((_, i): Traffic | undefined =>
        started[i] === undefined || latencies[i] === undefined || rates[i] === undefined || bulks[i] === undefined
          ? undefined
          : {
            latencies: latencies[i],
            rate: rates[i],
            bulk: bulks[i],
            startupSeconds: started[i].running.startupSeconds,
            openFiles: openFileLimit(started[i].running.child.pid)
          }
      )
    }))

    const held = (
      phase: string,
      what: string,
      open: (port: number) => (worker: number) => Promise<ReadonlyArray<Duplex>>
    ) =>
      inTurn(runs, (relay) =>
        Effect.scoped(Effect.gen(function*() {
          const running = yield* relay.start(phase, capacity)
          const opener = beaconOpener(running.port, shared.identities)
          yield* step(`${relay.label}: warm-up pairings`, () => warmUp(opener, plan.warmupSessions, 10))
          return yield* step(
            `${relay.label}: memory with ${plan.heldCount} ${what}`,
            () =>
              memoryPerHeld(
                running.child.pid,
                plan.heldCount,
                plan.inFlight,
                plan.phaseDeadlineMs,
                plan.settleMs,
                open(running.port)
              )
          )
        })))
    const waiting = yield* held("waiting", "waiting bridges", (port) => waitingBridge(port, shared.identities))
    const paired = yield* held(
      "paired",
      "paired sessions",
      (port) => heldSession(beaconOpener(port, shared.identities))
    )

    return runs.map((run, i) =>
      run.failure !== undefined
        ? { failed: true as const, error: run.failure }
        : pairingRelayFigures(traffic[i]!, waiting[i]!, paired[i]!, shared.roundTrips?.[run.relay.side], shared)
    )
  })

/** The figures of one relay that speaks the beacon protocol, under the same names for the beacon and the bare relay. */
const pairingRelayFigures = (
  traffic: Traffic,
  waiting: MemoryPerHeld,
  paired: MemoryPerHeld,
  roundTrips: RoundTripFigures | undefined,
  shared: Shared
) => ({
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
  ...roundTripFields(roundTrips, shared.roundTrips?.direct),
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
  publishedBareNodeRelay: {
    description: "a bare 150-line Node.js relay speaking the same protocol",
    note: "measured on this machine on another day: compare with bareNodeRelay from this run first",
    cpuSecondsPerGiB: 3.12,
    addedRoundTripUs: 77,
    memoryPerPairKB: 108,
    pairsPerSecond: 300,
    pairingLatencyP99Ms: 3.2
  }
}

type PairingRelayFigures = ReturnType<typeof pairingRelayFigures>

/** The figures compared between the beacon and the bare relay, and which way is better. */
const comparedWithBareRelay = {
  pairingLatencyP50Ms: "lower",
  pairingLatencyP99Ms: "lower",
  pairsPerSecond: "higher",
  beaconCpuMsPerPairing: "lower",
  relayThroughputMiBps: "higher",
  cpuSecondsPerGiB: "lower",
  addedRoundTripUs: "lower",
  memoryPerWaitingClientKiB: "lower",
  memoryPerPairedSessionKiB: "lower",
  idleRssMiB: "lower",
  startupSeconds: "lower"
} as const satisfies Partial<Record<keyof PairingRelayFigures, "lower" | "higher">>

/** Each compared figure of the beacon next to the bare relay's from the same run. */
const versusBareRelay = (beacon: PairingRelayFigures, bare: PairingRelayFigures) =>
  Object.fromEntries(
    (Object.keys(comparedWithBareRelay) as Array<keyof typeof comparedWithBareRelay>).map((name) => {
      const ours = beacon[name]
      const theirs = bare[name]
      const higherIsBetter = comparedWithBareRelay[name] === "higher"
      return [name, {
        beacon: ours,
        bareNodeRelay: theirs,
        ratio: ratio(ours, theirs),
        beaconBetter: ours === null || theirs === null ? null : higherIsBetter ? ours > theirs : ours < theirs
      }]
    })
  )

/** The beacon against the fixed figures of a bare relay measured on another day, as targets. */
const versusPublishedBareRelay = (beacon: PairingRelayFigures) => {
  const published = reference.publishedBareNodeRelay
  const targets = {
    cpuSecondsPerGiB: { beacon: beacon.cpuSecondsPerGiB, target: published.cpuSecondsPerGiB, lowerIsBetter: true },
    addedRoundTripUs: { beacon: beacon.addedRoundTripUs, target: published.addedRoundTripUs, lowerIsBetter: true },
    memoryPerPairedSessionKiB: {
      beacon: beacon.memoryPerPairedSessionKiB,
      target: published.memoryPerPairKB,
      lowerIsBetter: true
    },
    pairsPerSecond: { beacon: beacon.pairsPerSecond, target: published.pairsPerSecond, lowerIsBetter: false },
    pairingLatencyP99Ms: {
      beacon: beacon.pairingLatencyP99Ms,
      target: published.pairingLatencyP99Ms,
      lowerIsBetter: true
    }
  }
  return Object.fromEntries(
    Object.entries(targets).map(([name, { beacon, lowerIsBetter, target }]) => [
      name,
      { beacon, target, meets: beacon === null ? null : lowerIsBetter ? beacon <= target : beacon >= target }
    ])
  )
}

const definitions = {
  pairingLatencyP50Ms: "pairings made one at a time (a bridge waits, then a broker connects): time from the broker's " +
    "tls.connect call until both the bridge and the broker have read PAIRED, 50th percentile; includes the broker's " +
    "TLS handshake, CHALLENGE, HELLO signing and the relay's proof and certificate checks",
  pairingLatencyP99Ms: "the same, 99th percentile (nearest rank)",
  pairsPerSecond: "completed pairings per second of wall time with pairsInFlight workers, each connecting a bridge, " +
    "waiting for WAITING, connecting a broker, waiting for both PAIRED, closing both, and starting over",
  beaconCpuMsPerPairing: "user+system CPU milliseconds of the relay process (the beacon, or under bareNodeRelay the " +
    "bare relay) during the pairsPerSecond run, per completed pairing: the cost of one pairing, and 1000 / it the " +
    "rate one saturated core could reach; unlike the rates it barely depends on what else the machine runs",
  idleRssMiB: "the relay's VmRSS after start-up and warm-up pairings, before the waiting clients connect",
  startupSeconds: "from spawning the relay process to the line that says it listens",
  relayThroughputMiBps:
    "relayBytes written by the broker into one paired session in 64 KiB writes with backpressure, " +
    "divided by the time from the first write until the bridge has read the last byte",
  cpuSecondsPerGiB: "user+system CPU seconds of the relay process (/proc/<pid>/stat) during that transfer, per GiB",
  addedRoundTripUs: "median round trip of one 64-byte message echoed by the far end through the relay, minus the " +
    "median of the same echo over a direct TLS connection to the in-process TLS backend (direct.roundTripMedianUs)",
  roundTripCores: "while the round trips run, one busy loop per core at nice 19 keeps idle cores from sleeping: " +
    "otherwise the wake-up of a sleeping core, not the relay, dominates every hop through another process",
  roundTripRoundMediansUs: "the round trips run in rounds, the direct path, the beacon, the bare relay and haproxy " +
    "taking turns, so that all of them meet the same changes in the machine's load; these are the medians of each " +
    "round, and if they differ much the load changed during the run",
  memoryPerWaitingClientKiB: "increase of the relay's VmRSS (/proc/<pid>/status) after waitingClients bridges " +
    "have read WAITING, divided by waitingClients; read after a 2 s settle on a fresh process warmed up by pairings",
  memoryPerPairedSessionKiB: "the same with pairedSessions paired sessions (two sockets each at the relay) that " +
    "have each carried one byte from broker to bridge",
  direct: "the load generator's own ceiling: the same sessions, round trips and transfer over one TLS connection " +
    "straight to the in-process TLS backend, with no relay; its CPU figure is the load generator's for both ends",
  bareNodeRelay: "scripts/bench/internal/BareRelay.ts: a plain Node.js relay of the same protocol (node:tls with " +
    "Node's defaults, the protocol package's frame codec, node:crypto checks of every HELLO without caching, " +
    "pipe() between the paired sockets) with no limits, metrics, logs, tracing or drain; measured with the same " +
    "clients and phases as the beacon and under the same figure names, taking turns with it in every step of the " +
    "traffic phase",
  vsBareNodeRelay: "each figure of the beacon next to the bare relay's from this run: ratio is beacon / bare relay, " +
    "beaconBetter says whether the beacon did better (lower, except pairsPerSecond and relayThroughputMiBps)",
  vsPublishedBareNodeRelay: "the beacon against reference.publishedBareNodeRelay, fixed figures of a bare relay " +
    "measured on another day: with latencies varying by a third between runs here, a guide, not a verdict",
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
  const relays = pairingRelays(dir, server)

  const haproxyAvailability = measures("haproxy")
    ? yield* ensureHaproxy(progress)
    : { available: false as const, note: notMeasured.note }
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
    relays,
    identities,
    backend,
    haproxyAvailability.available ? haproxyPem : undefined,
    dir
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
    pairingRelays: relays,
    roundTrips
  }

  const measured = yield* measurePairingRelays(shared)
  const resultOf = (side: PairingRelay["side"]) => {
    const index = relays.findIndex((relay) => relay.side === side)
    return index < 0 ? notMeasured : measured[index]!
  }
  const beacon = resultOf("beacon")
  const bareNodeRelay = resultOf("bare")
  const haproxy = yield* measureHaproxy(shared).pipe(
    Effect.catchAll((error) => Effect.succeed({ failed: true as const, error: error.message }))
  )

  const { addedRoundTripUs: _zero, ...directRoundTrips } = roundTripFields(roundTrips?.direct, roundTrips?.direct)
  const beaconMeasured = "failed" in beacon || "skipped" in beacon ? undefined : beacon
  const ratios = beaconMeasured === undefined || "failed" in haproxy || "skipped" in haproxy ? null : {
    cpuSecondsPerGiB: ratio(beaconMeasured.cpuSecondsPerGiB, haproxy.cpuSecondsPerGiB),
    addedRoundTripUs: ratio(beaconMeasured.addedRoundTripUs, haproxy.addedRoundTripUs),
    memoryPerSessionKiB: ratio(beaconMeasured.memoryPerPairedSessionKiB, haproxy.memoryPerIdleSessionKiB),
    setupsPerSecond: ratio(beaconMeasured.pairsPerSecond, haproxy.sessionsPerSecond),
    cpuMsPerSetup: ratio(beaconMeasured.beaconCpuMsPerPairing, haproxy.haproxyCpuMsPerSession),
    relayThroughputMiBps: ratio(beaconMeasured.relayThroughputMiBps, haproxy.relayThroughputMiBps)
  }

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
    bareNodeRelay,
    haproxy,
    direct: {
      ...directRoundTrips,
      sessionsPerSecond: round(directRate.perSecond, 1),
      throughputMiBps: round(directBulk.mibPerSecond, 1),
      loadGeneratorCpuSecondsPerGiB: round(directBulk.cpuSecondsPerGiB, 3)
    },
    vsBareNodeRelay: beaconMeasured === undefined || "failed" in bareNodeRelay || "skipped" in bareNodeRelay
      ? null
      : versusBareRelay(beaconMeasured, bareNodeRelay),
    ratioToHaproxy: ratios,
    vsPublishedBareNodeRelay: beaconMeasured === undefined ? null : versusPublishedBareRelay(beaconMeasured),
    reference,
    loadGenerator: {
      openFileLimit: openFileLimit(process.pid),
      layout: "one Node.js process (this one) holds every client socket and the TLS backend, at most " +
        `${2 * plan.heldCount} sockets (${plan.heldCount} paired sessions, or ${plan.heldCount} haproxy clients and ` +
        "their backend ends); the beacon, the bare relay and haproxy run as child processes with their own " +
        "open-file limits; waiting clients and paired sessions are measured one relay and one phase after the " +
        "other, each on a fresh process"
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
      if ([result.beacon, result.bareNodeRelay, result.haproxy].some((side) => "failed" in side)) {
        process.exitCode = 1
      }
    })
  ),
  Effect.tapErrorCause((cause) => Effect.sync(() => progress(`failed: ${cause.toString()}`)))
)

NodeRuntime.runMain(main, { disablePrettyLogger: true, disableErrorReporting: true })
