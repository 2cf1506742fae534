/**
 * Relay sessions as the load generator sees them, and the figures taken on any of them: a session is the two
 * in-process ends of one path through a relay (broker and bridge for the beacon, client and backend for haproxy).
 */
import type { Duplex } from "node:stream"
import { nowMs } from "./Stats.ts"

/** The two ends of one session. Both are paused when handed out, so no byte is lost before a reader is attached. */
export interface Session {
  /** The connecting end: the broker, or the TLS client of haproxy. */
  readonly client: Duplex
  /** The far end: the bridge, or the TLS backend server behind haproxy. */
  readonly server: Duplex
}

/** A way to open sessions through one relay (or none, for the direct baseline). */
export interface SessionOpener {
  /**
   * Opens one session. `setupMs` runs from the start of the connect that completes the session (the broker's, for
   * the beacon) until both ends are established. `worker` picks per-worker credentials where the relay needs them.
   */
  readonly open: (worker: number) => Promise<{ readonly session: Session; readonly setupMs: number }>
}

const openSockets = new Set<Duplex>()

/** Keeps `socket` in the set of sockets that `destroyAllSockets` ends, until it closes. */
export const trackSocket = <S extends Duplex>(socket: S): S => {
  openSockets.add(socket)
  socket.once("close", () => openSockets.delete(socket))
  return socket
}

/** Destroys every tracked socket still open: the last step of every run, whatever happened before. */
export const destroyAllSockets = (): void => {
  for (const socket of openSockets) socket.destroy()
  openSockets.clear()
}

/** Destroys both ends of a session. */
export const closeSession = (session: Session): void => {
  session.client.destroy()
  session.server.destroy()
}

/** Rejects with `what` if `promise` has not settled within `ms`. */
export const withDeadline = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/**
 * Sends `count` 64-byte messages one at a time from the client end, echoed by the server end, and returns each
 * round trip in microseconds. The first `warmup` round trips are not returned.
 */
export const roundTrips = (session: Session, count: number, warmup: number, deadlineMs: number) =>
  withDeadline(
    new Promise<Array<number>>((resolve, reject) => {
      const payload = Buffer.alloc(64, 0x5a)
      const samples: Array<number> = []
      let pending = 0
      let sentAt = 0
      let done = 0
      const echo = (chunk: Buffer) => session.server.write(chunk)
      const onError = (error: Error) => {
        finish()
        reject(error)
      }
      const onReply = (chunk: Buffer) => {
        pending -= chunk.length
        if (pending > 0) return
        const elapsedUs = (nowMs() - sentAt) * 1000
        done++
        if (done > warmup) samples.push(elapsedUs)
        if (done < warmup + count) return send()
        finish()
        resolve(samples)
      }
      // Leaves the session as it was found, so that the next run on it starts clean.
      const finish = () => {
        session.server.removeListener("data", echo)
        session.client.removeListener("data", onReply)
        session.server.removeListener("error", onError)
        session.client.removeListener("error", onError)
        session.server.pause()
        session.client.pause()
      }
      const send = () => {
        pending = payload.length
        sentAt = nowMs()
        session.client.write(payload)
      }
      session.server.on("data", echo)
      session.client.on("data", onReply)
      session.server.once("error", onError)
      session.client.once("error", onError)
      session.server.resume()
      session.client.resume()
      send()
    }),
    deadlineMs,
    "round trips"
  )

/** The outcome of one bulk transfer. */
export interface Transfer {
  readonly bytes: number
  readonly seconds: number
}

/**
 * Writes `bytes` from the client end to the server end in 64 KiB chunks, waiting for `drain` whenever the socket
 * asks, and resolves when the server end has read all of it. `onStart` runs just before the first write.
 */
export const transfer = (session: Session, bytes: number, deadlineMs: number, onStart: () => void = () => {}) =>
  withDeadline(
    new Promise<Transfer>((resolve, reject) => {
      const chunk = Buffer.alloc(64 * 1024, 0xa5)
      let received = 0
      let sent = 0
      let startedAt = 0
      session.server.once("error", reject)
      session.client.once("error", reject)
      session.server.on("data", (data: Buffer) => {
        received += data.length
        if (received >= bytes) resolve({ bytes: received, seconds: (nowMs() - startedAt) / 1000 })
      })
      session.server.resume()
      const pump = () => {
        while (sent < bytes) {
          const size = Math.min(chunk.length, bytes - sent)
          sent += size
          if (!session.client.write(size === chunk.length ? chunk : chunk.subarray(0, size))) {
            session.client.once("drain", pump)
            return
          }
        }
      }
      onStart()
      startedAt = nowMs()
      pump()
    }),
    deadlineMs,
    "bulk transfer"
  )

/** How a bounded run of concurrent workers went. */
export interface WorkerRun {
  readonly completed: number
  readonly failed: number
  readonly seconds: number
  readonly firstError: string | undefined
}

/**
 * Runs `task` on `concurrency` workers until `total` tasks have been started or `deadlineMs` has passed, whichever
 * comes first, and waits for the started ones to settle. Failed tasks are counted, not retried.
 */
export const runWorkers = async (
  concurrency: number,
  total: number,
  deadlineMs: number,
  task: (worker: number, index: number) => Promise<void>
): Promise<WorkerRun> => {
  const startedAt = nowMs()
  let next = 0
  let completed = 0
  let failed = 0
  let firstError: string | undefined
  const worker = async (id: number) => {
    while (next < total && nowMs() - startedAt < deadlineMs) {
      const index = next++
      try {
        await task(id, index)
        completed++
      } catch (error) {
        failed++
        firstError ??= error instanceof Error ? error.message : String(error)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, (_, id) => worker(id)))
  return { completed, failed, seconds: (nowMs() - startedAt) / 1000, firstError }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
