/**
 * The measurements, written once for any relay: session setup latency and rate, round trips, bulk throughput with
 * the relay's CPU time, and resident memory per held connection.
 */
import type { Duplex } from "node:stream"
import { cpuSeconds, rssBytes } from "./Proc.ts"
import {
  closeSession,
  roundTrips,
  runWorkers,
  type Session,
  type SessionOpener,
  sleep,
  transfer,
  withDeadline
} from "./Sessions.ts"
import { median, nowMs, percentile } from "./Stats.ts"

/** Progress lines go to stderr; stdout carries only the result. */
export const progress = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

/** Opens and closes `count` sessions one after another and returns each setup time in ms. */
export const setupLatencies = async (
  opener: SessionOpener,
  count: number,
  deadlineMs: number
): Promise<Array<number>> => {
  const samples: Array<number> = []
  const startedAt = nowMs()
  while (samples.length < count && nowMs() - startedAt < deadlineMs) {
    const { session, setupMs } = await opener.open(0)
    samples.push(setupMs)
    closeSession(session)
  }
  return samples
}

/** Setup rate with a fixed number of sessions in flight, and where the CPU went meanwhile. */
export interface SetupRate {
  readonly perSecond: number
  readonly completed: number
  readonly failed: number
  readonly firstError: string | undefined
  /** CPU seconds of the relay per second of the run: 1 is one core busy all the time. */
  readonly relayCpuShare: number
  /** CPU milliseconds of the relay per completed session: what the relay's setup rate would be bound by alone. */
  readonly relayCpuMsPerSetup: number
  /** CPU seconds of the load generator (this process) per second of the run. */
  readonly loadGeneratorCpuShare: number
  /** CPU milliseconds of the load generator per completed session. */
  readonly loadGeneratorCpuMsPerSetup: number
}

/** Opens and closes `total` sessions with `inFlight` workers, each opening its next session when one is set up. */
export const setupRate = async (
  opener: SessionOpener,
  relayPid: number,
  inFlight: number,
  total: number,
  deadlineMs: number
): Promise<SetupRate> => {
  const relayCpuBefore = cpuSeconds(relayPid)
  const ownCpuBefore = process.cpuUsage()
  const run = await runWorkers(inFlight, total, deadlineMs, async (worker) => {
    const { session } = await opener.open(worker)
    closeSession(session)
  })
  const ownCpu = process.cpuUsage(ownCpuBefore)
  const relayCpu = cpuSeconds(relayPid) - relayCpuBefore
  return {
    perSecond: run.completed / run.seconds,
    completed: run.completed,
    failed: run.failed,
    firstError: run.firstError,
    relayCpuShare: relayCpu / run.seconds,
    relayCpuMsPerSetup: (relayCpu * 1000) / Math.max(1, run.completed),
    loadGeneratorCpuShare: (ownCpu.user + ownCpu.system) / 1e6 / run.seconds,
    loadGeneratorCpuMsPerSetup: (ownCpu.user + ownCpu.system) / 1e3 / Math.max(1, run.completed)
  }
}

/** Round trips over one path. */
export interface RoundTripFigures {
  readonly medianUs: number
  readonly p99Us: number
  readonly count: number
  /** The median of each round: if they differ much, the machine's load changed while the rounds ran. */
  readonly roundMediansUs: ReadonlyArray<number>
}

/**
 * 64-byte round trips over several paths at once: one session per path, a warm-up on each, then `rounds` rounds in
 * which every path in turn makes `perRound` round trips, each round starting one path later. Taking turns exposes all
 * paths to the same drift in the machine's load, so that their differences stay fair when something else runs.
 */
export const interleavedRoundTrips = async (
  openers: ReadonlyArray<SessionOpener>,
  rounds: number,
  perRound: number,
  warmup: number
): Promise<Array<RoundTripFigures>> => {
  const sessions: Array<Session> = []
  try {
    for (const opener of openers) sessions.push((await opener.open(0)).session)
    for (const session of sessions) await roundTrips(session, 0, warmup, 60_000)
    const perPath = sessions.map(() => ({ all: [] as Array<number>, roundMedians: [] as Array<number> }))
    for (let round = 0; round < rounds; round++) {
      // Each round starts with the next path, so that no path always runs first or right after another.
      for (let turn = 0; turn < sessions.length; turn++) {
        const i = (round + turn) % sessions.length
        const samples = await roundTrips(sessions[i]!, perRound, 0, 60_000)
        perPath[i]!.all.push(...samples)
        perPath[i]!.roundMedians.push(median(samples))
      }
    }
    return perPath.map(({ all, roundMedians }) => ({
      medianUs: median(all),
      p99Us: percentile(all, 99),
      count: all.length,
      roundMediansUs: roundMedians
    }))
  } finally {
    for (const session of sessions) closeSession(session)
  }
}

/** Bulk transfer through one session, with the relay's CPU seconds during it. */
export interface Throughput {
  readonly bytes: number
  readonly seconds: number
  readonly mibPerSecond: number
  readonly relayCpuSeconds: number
  readonly cpuSecondsPerGiB: number
}

/**
 * Sends `warmupBytes` through one session (to let the JIT and the buffers settle) and then `bytes` through a fresh
 * one, reading the relay's user+system CPU time just before the first write and just after the last byte arrived.
 */
export const throughput = async (
  opener: SessionOpener,
  relayPid: number,
  bytes: number,
  warmupBytes: number
): Promise<Throughput> => {
  const warm = await opener.open(0)
  try {
    await transfer(warm.session, warmupBytes, 120_000)
  } finally {
    closeSession(warm.session)
  }
  const { session } = await opener.open(0)
  try {
    let cpuBefore = 0
    const result = await transfer(session, bytes, 600_000, () => {
      cpuBefore = cpuSeconds(relayPid)
    })
    const relayCpuSeconds = cpuSeconds(relayPid) - cpuBefore
    return {
      bytes: result.bytes,
      seconds: result.seconds,
      mibPerSecond: result.bytes / 1024 / 1024 / result.seconds,
      relayCpuSeconds,
      cpuSecondsPerGiB: relayCpuSeconds / (result.bytes / 1024 ** 3)
    }
  } finally {
    closeSession(session)
  }
}

/** Sends one byte from the client end and resolves when the server end has read it: the whole path is live. */
export const confirmPath = (session: Session): Promise<void> =>
  withDeadline(
    new Promise<void>((resolve, reject) => {
      session.server.once("error", reject)
      session.server.once("data", () => {
        session.server.pause()
        resolve()
      })
      session.server.resume()
      session.client.write(Buffer.of(1))
    }),
    15_000,
    "one byte through the session"
  )

/** Resident memory of the relay per held connection. */
export interface MemoryPerHeld {
  readonly held: number
  readonly failed: number
  readonly firstError: string | undefined
  readonly rssBeforeBytes: number
  readonly rssAfterBytes: number
  readonly bytesPerHeld: number
}

/**
 * Lets the relay settle for `settleMs` and reads its RSS, opens `count` held connections with `inFlight` workers (each
 * `open` resolves with the sockets to keep), lets the relay settle again, reads RSS again and divides the difference
 * by the number held. Every socket is destroyed before this returns.
 */
export const memoryPerHeld = async (
  relayPid: number,
  count: number,
  inFlight: number,
  deadlineMs: number,
  settleMs: number,
  open: (worker: number) => Promise<ReadonlyArray<Duplex>>
): Promise<MemoryPerHeld> => {
  await sleep(settleMs)
  const rssBeforeBytes = rssBytes(relayPid)
  const held: Array<ReadonlyArray<Duplex>> = []
  try {
    const run = await runWorkers(inFlight, count, deadlineMs, async (worker) => {
      held.push(await open(worker))
    })
    await sleep(settleMs)
    const rssAfterBytes = rssBytes(relayPid)
    return {
      held: held.length,
      failed: run.failed,
      firstError: run.firstError,
      rssBeforeBytes,
      rssAfterBytes,
      bytesPerHeld: (rssAfterBytes - rssBeforeBytes) / Math.max(1, held.length)
    }
  } finally {
    for (const sockets of held) for (const socket of sockets) socket.destroy()
  }
}

/** Warms the relay up with `count` sessions set up and closed, `inFlight` at a time; failures are ignored. */
export const warmUp = async (opener: SessionOpener, count: number, inFlight: number): Promise<void> => {
  await runWorkers(inFlight, count, 60_000, async (worker) => {
    const { session } = await opener.open(worker)
    closeSession(session)
  })
}
