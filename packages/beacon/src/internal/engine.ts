/**
 * The beacon's connection engine: the per-connection protocol state machine, the waiting room, one shared ticker
 * for every deadline and PING, and the relay between paired clients. It is plain event-driven code on purpose: a
 * connection costs one small object and its socket, and relayed bytes never leave Node's streams.
 */
import { ErrorCode } from "@cloudtaser/protocol/ErrorCode"
import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import type { HelloFrame } from "@cloudtaser/protocol/Frame"
import { encodeFrame, error as errorFrame, FrameType } from "@cloudtaser/protocol/Frame"
import { FrameDecoder } from "@cloudtaser/protocol/FrameDecoder"
import { Pairing } from "@cloudtaser/protocol/Pairing"
import type { Limit, PairingLimits } from "@cloudtaser/protocol/Pairing"
import { randomInt } from "node:crypto"
import type { TLSSocket } from "node:tls"
import type { BeaconMetricsService } from "../BeaconMetrics.ts"
import * as Frames from "./frames.ts"

/** Why a HELLO is refused: the error code to send and the reason that goes with it. */
export interface HelloRefusal {
  readonly code: ErrorCodeName
  readonly reason: string
}

/** Checks a decoded HELLO's certificates and proof against this connection's nonce; undefined means accepted. */
export type CheckHello = (hello: HelloFrame, nonce: Uint8Array) => HelloRefusal | undefined

/** How a relay session ended, as recorded on its span. */
export type EndReason =
  | "closed"
  | "reset"
  | "peer_closed_before_ready"
  | "ready_timeout"
  | "bad_frame_before_ready"
  | "drain_deadline"
  | "shutdown"

/** What a session's span needs when the session starts. */
export interface SessionStart {
  readonly shortHash: string
  readonly waitMs: number
  /** The traceparent of the later client's HELLO, or else of the earlier one's. */
  readonly traceparent: string | undefined
}

/** What a session's span records when the session ends. */
export interface SessionEnd {
  readonly reason: EndReason
  readonly bytesBridgeToBroker: number
  readonly bytesBrokerToBridge: number
}

/** The tracer's side of a session. */
export interface SessionSpan {
  readonly end: (end: SessionEnd) => void
}

/** The engine's collaborators. */
export interface EngineHooks {
  readonly metrics: BeaconMetricsService
  readonly checkHello: CheckHello
  readonly startSpan: (start: SessionStart) => SessionSpan
  /** A bug in the engine: logged, and the connection that hit it is closed with ERROR internal. */
  readonly onDefect: (defect: unknown) => void
}

/** The engine's settings; see `BeaconOptions`. */
export interface EngineOptions {
  readonly helloTimeoutMs: number
  readonly pingIntervalMs: number
  readonly maxWaitCapMs: number
  readonly limits: PairingLimits
  /** How long a refused client may take to close after its ERROR before the beacon drops it. */
  readonly lingerMs: number
}

// Phases of a connection, in the order it goes through them.
const AWAITING_HELLO = 0
const WAITING = 1
const PAIRED = 2
const READY = 3
const RELAYING = 4
const CLOSING = 5
const CLOSED = 6

type Phase = 0 | 1 | 2 | 3 | 4 | 5 | 6

class Session {
  readonly bridge: Connection
  readonly broker: Connection
  readonly span: SessionSpan
  reason: EndReason | undefined = undefined

  constructor(bridge: Connection, broker: Connection, span: SessionSpan) {
    this.bridge = bridge
    this.broker = broker
    this.span = span
  }
}

class Connection {
  readonly engine: Engine
  readonly socket: TLSSocket
  readonly source: string
  phase: Phase = AWAITING_HELLO
  role: 1 | 2 = 1
  hashKey = ""
  traceparent: string | undefined = undefined
  /** Frames from the client; dropped once it has sent READY or been refused. */
  decoder: FrameDecoder | undefined = new FrameDecoder()
  nonce: Buffer | undefined = undefined
  /** Hello deadline, READY deadline or linger end, depending on the phase (performance.now() ms). */
  deadline = 0
  nextPingAt = 0
  pingsSent = 0
  unansweredPings = 0
  waitingSince = 0
  helloAt = 0
  /** Hex: a Buffer here would be a view that keeps a whole shared allocation pool slab alive while waiting. */
  sessionId: string | undefined = undefined
  peer: Connection | undefined = undefined
  session: Session | undefined = undefined
  /** Bytes for the peer that arrived in the same read as READY. */
  early: Buffer | undefined = undefined
  /** `socket.bytesWritten` once PAIRED was written: what follows is the peer's bytes. */
  writtenAtPairing = 0

  constructor(engine: Engine, socket: TLSSocket) {
    this.engine = engine
    this.socket = socket
    this.source = socket.remoteAddress ?? ""
  }
}

const kConnection = Symbol("beacon.connection")

interface BeaconSocket extends TLSSocket {
  [kConnection]?: Connection
}

// Listeners shared by every socket: `this` is the socket, so a connection needs no closures of its own.
function onSocketData(this: BeaconSocket, chunk: Buffer): void {
  const connection = this[kConnection]!
  connection.engine.onData(connection, chunk)
}

function onSocketEnd(this: BeaconSocket): void {
  const connection = this[kConnection]!
  connection.engine.onEnd(connection)
}

function onSocketClose(this: BeaconSocket, hadError: boolean): void {
  const connection = this[kConnection]!
  connection.engine.onClose(connection, hadError)
}

function onSocketError(this: BeaconSocket): void {
  // Node closes the socket after an error; 'close' does the bookkeeping.
}

const roleName = (role: 1 | 2): "bridge" | "broker" => role === 1 ? "bridge" : "broker"

/** The beacon's connections and everything they share. */
export class Engine {
  private readonly options: EngineOptions
  private readonly hooks: EngineHooks
  private readonly pairing: Pairing<Connection>
  private readonly connections = new Set<Connection>()
  // Deadlines in these three sets grow with insertion order, so the ticker stops at the first one not yet due.
  private readonly awaitingHello = new Set<Connection>()
  private readonly awaitingReady = new Set<Connection>()
  private readonly lingering = new Set<Connection>()
  private readonly waiting = new Set<Connection>()
  private readonly pingSalt = randomInt(0, 0xffff_ffff)
  private drainingFlag = false
  private idleCallbacks: Array<() => void> = []

  constructor(options: EngineOptions, hooks: EngineHooks) {
    this.options = options
    this.hooks = hooks
    this.pairing = new Pairing(options.limits)
  }

  /** Whether `startDrain` was called. */
  get draining(): boolean {
    return this.drainingFlag
  }

  /** The number of open connections. */
  get size(): number {
    return this.connections.size
  }

  /** The number of clients waiting for a peer. */
  get waitingCount(): number {
    return this.waiting.size
  }

  /** Takes over a socket whose TLS handshake has completed. */
  accept(tlsSocket: TLSSocket): void {
    const socket = tlsSocket as BeaconSocket
    const connection = new Connection(this, socket)
    socket[kConnection] = connection
    socket.on("data", onSocketData)
    socket.on("end", onSocketEnd)
    socket.on("close", onSocketClose)
    socket.on("error", onSocketError)
    this.connections.add(connection)
    this.hooks.metrics.connectionOpened()
    if (this.drainingFlag) {
      this.refuse(connection, "shutting_down", "the beacon is shutting down: connect again, to it or another beacon")
      return
    }
    const frame = Frames.allocFrame(FrameType.Challenge, 33)
    frame[Frames.HEADER_BYTES] = 1
    Frames.fillRandom(frame, Frames.HEADER_BYTES + 1, 32)
    connection.nonce = frame.subarray(Frames.HEADER_BYTES + 1)
    connection.deadline = performance.now() + this.options.helloTimeoutMs
    this.awaitingHello.add(connection)
    socket.write(frame)
  }

  /** Handles bytes from a client that has not started relaying. */
  onData(connection: Connection, chunk: Buffer): void {
    if (connection.phase >= CLOSING) return
    try {
      this.readFrames(connection, chunk)
    } catch (defect) {
      this.hooks.onDefect(defect)
      this.fail(connection)
    }
  }

  private readFrames(connection: Connection, chunk: Buffer): void {
    const decoder = connection.decoder!
    decoder.push(chunk)
    for (;;) {
      const result = decoder.next()
      if (result._tag === "NeedMore") return
      if (result._tag === "Failed") {
        const error = result.error
        this.onBadFrame(connection, error.reason, `${error.message}: the client does not speak cloudtaser-beacon/1`)
        return
      }
      const frame = result.frame
      switch (connection.phase) {
        case AWAITING_HELLO: {
          if (frame._tag === "Hello") {
            this.onHello(connection, frame)
          } else {
            this.refuse(
              connection,
              "bad_frame",
              "the first frame must be HELLO: the client does not speak the protocol"
            )
          }
          break
        }
        case WAITING: {
          if (frame._tag === "Pong") {
            this.onPong(connection, frame.data)
          } else {
            this.refuse(connection, "bad_frame", `only PONG may be sent while waiting, not ${frame._tag.toUpperCase()}`)
          }
          break
        }
        case PAIRED: {
          if (frame._tag === "Ready") {
            this.onReady(connection, decoder.takeRemaining())
            return
          }
          if (frame._tag !== "Pong") this.closePair(connection, "bad_frame_before_ready")
          break
        }
      }
      if (connection.phase >= CLOSING) return
    }
  }

  private onReady(connection: Connection, rest: Uint8Array): void {
    connection.phase = READY
    connection.decoder = undefined
    this.awaitingReady.delete(connection)
    const socket = connection.socket
    socket.pause()
    socket.removeListener("data", onSocketData)
    if (rest.length > 0) connection.early = Buffer.from(rest.buffer, rest.byteOffset, rest.length)
    if (connection.peer!.phase === READY) this.startRelay(connection.session!)
  }

  private onBadFrame(connection: Connection, code: ErrorCodeName, reason: string): void {
    // Once PAIRED is sent the beacon → client direction belongs to the peer: no ERROR frame can be sent there.
    if (connection.phase === PAIRED) this.closePair(connection, "bad_frame_before_ready")
    else this.refuse(connection, code, reason)
  }

  private onHello(connection: Connection, hello: HelloFrame): void {
    const helloAt = performance.now()
    this.awaitingHello.delete(connection)
    const nonce = connection.nonce!
    connection.nonce = undefined
    const refusal = this.hooks.checkHello(hello, nonce)
    if (refusal !== undefined) {
      this.refuse(connection, refusal.code, refusal.reason)
      return
    }
    if (this.drainingFlag) {
      this.refuse(connection, "shutting_down", "the beacon is shutting down: connect again, to it or another beacon")
      return
    }
    connection.helloAt = helloAt
    connection.role = hello.role
    connection.hashKey = Buffer.from(hello.infoHash.buffer, hello.infoHash.byteOffset, 32).toString("hex")
    connection.traceparent = hello.traceparent
    const arrival = {
      id: connection,
      role: hello.role,
      hash: connection.hashKey,
      source: connection.source,
      at: helloAt,
      expiresAt: helloAt + Math.min(hello.maxWaitMs, this.options.maxWaitCapMs)
    }
    let outcome = this.pairing.arrive(arrival)
    // A waiter that let the last two PINGs go unanswered is silent: it is closed, never paired.
    while (outcome._tag === "Paired" && outcome.peer.unansweredPings >= 2) {
      this.leaveWaiting(outcome.peer)
      outcome.peer.socket.destroy()
      outcome = this.pairing.arrive(arrival)
    }
    switch (outcome._tag) {
      case "Paired": {
        const peer = outcome.peer
        this.waiting.delete(peer)
        this.hooks.metrics.waitingChanged(roleName(peer.role), -1)
        this.pair(peer, connection)
        return
      }
      case "Waiting":
        return this.wait(connection, helloAt)
      case "Expired":
        return this.refuse(connection, "wait_expired", "no peer was waiting and the HELLO asked not to wait")
      case "Refused":
        return this.refuse(connection, "capacity", capacityReason[outcome.limit])
      case "Duplicate":
        throw new Error("a connection arrived twice at the pairing machine")
    }
  }

  private wait(connection: Connection, now: number): void {
    const frame = Frames.allocFrame(FrameType.Waiting, 20)
    Frames.fillRandom(frame, Frames.HEADER_BYTES, 16)
    frame.writeUInt32BE(this.options.pingIntervalMs, Frames.HEADER_BYTES + 16)
    connection.sessionId = frame.toString("hex", Frames.HEADER_BYTES, Frames.HEADER_BYTES + 16)
    connection.phase = WAITING
    connection.waitingSince = now
    connection.nextPingAt = now + this.options.pingIntervalMs
    this.waiting.add(connection)
    this.hooks.metrics.waitingChanged(roleName(connection.role), 1)
    connection.socket.write(frame)
  }

  private onPong(connection: Connection, data: Uint8Array): void {
    const payload = Buffer.from(data.buffer, data.byteOffset, data.length)
    if (payload.length !== 8 || payload.readUInt32BE(0) !== this.pingSalt) return
    const behind = connection.pingsSent - payload.readUInt32BE(4)
    if (behind >= 0 && behind < connection.unansweredPings) connection.unansweredPings = behind
  }

  private pair(waiter: Connection, later: Connection): void {
    const now = performance.now()
    const frame = Frames.allocFrame(FrameType.Paired, 16)
    frame.write(waiter.sessionId!, Frames.HEADER_BYTES, 16, "hex")
    const bridge = waiter.role === 1 ? waiter : later
    const broker = waiter.role === 1 ? later : waiter
    const span = this.hooks.startSpan({
      shortHash: waiter.hashKey.slice(0, 12),
      waitMs: Math.round(now - waiter.waitingSince),
      traceparent: later.traceparent ?? waiter.traceparent
    })
    const session = new Session(bridge, broker, span)
    for (const connection of [waiter, later]) {
      connection.phase = PAIRED
      connection.peer = connection === waiter ? later : waiter
      connection.session = session
      connection.sessionId = undefined
      connection.traceparent = undefined
      connection.deadline = now + this.options.helloTimeoutMs
      this.awaitingReady.add(connection)
      connection.socket.write(frame)
      connection.writtenAtPairing = connection.socket.bytesWritten
    }
    this.hooks.metrics.sessionStarted()
    this.hooks.metrics.paired((performance.now() - later.helloAt) / 1000)
  }

  private startRelay(session: Session): void {
    const { bridge, broker } = session
    bridge.phase = RELAYING
    broker.phase = RELAYING
    // Bytes that came with READY were sent first, so they go to the peer before anything piped after them.
    if (bridge.early !== undefined) broker.socket.write(bridge.early)
    if (broker.early !== undefined) bridge.socket.write(broker.early)
    bridge.early = undefined
    broker.early = undefined
    bridge.socket.pipe(broker.socket)
    broker.socket.pipe(bridge.socket)
  }

  /**
   * A client half-closed. Before READY that means it is gone; while relaying the pipe passes it on; after an ERROR
   * the socket closes by itself once the ERROR is flushed.
   */
  onEnd(connection: Connection): void {
    if (connection.phase < READY) connection.socket.destroy()
  }

  /** Bookkeeping when a socket has closed, whatever closed it. */
  onClose(connection: Connection, hadError: boolean): void {
    const phase = connection.phase
    connection.phase = CLOSED
    connection.decoder = undefined
    connection.early = undefined
    connection.nonce = undefined
    this.connections.delete(connection)
    this.awaitingHello.delete(connection)
    this.awaitingReady.delete(connection)
    this.lingering.delete(connection)
    if (phase === WAITING) this.leaveWaiting(connection)
    this.hooks.metrics.connectionClosed()
    const session = connection.session
    if (session !== undefined) {
      const peer = connection.peer!
      const clean = phase === RELAYING && !hadError && connection.socket.readableEnded &&
        connection.socket.writableFinished
      if (!clean) {
        session.reason ??= phase === RELAYING ? "reset" : "peer_closed_before_ready"
        peer.socket.destroy()
      }
      if (peer.phase === CLOSED) this.endSession(session)
    }
    if (this.connections.size === 0 && this.idleCallbacks.length > 0) {
      const callbacks = this.idleCallbacks
      this.idleCallbacks = []
      for (const callback of callbacks) callback()
    }
  }

  private endSession(session: Session): void {
    const { bridge, broker } = session
    const bytesBridgeToBroker = Math.max(0, broker.socket.bytesWritten - broker.writtenAtPairing)
    const bytesBrokerToBridge = Math.max(0, bridge.socket.bytesWritten - bridge.writtenAtPairing)
    this.hooks.metrics.sessionEnded(bytesBridgeToBroker, bytesBrokerToBridge)
    session.span.end({ reason: session.reason ?? "closed", bytesBridgeToBroker, bytesBrokerToBridge })
    bridge.session = undefined
    bridge.peer = undefined
    broker.session = undefined
    broker.peer = undefined
  }

  private leaveWaiting(connection: Connection): void {
    if (!this.waiting.delete(connection)) return
    this.pairing.leave(connection)
    this.hooks.metrics.waitingChanged(roleName(connection.role), -1)
  }

  /** Sends ERROR, half-closes, and gives the client `lingerMs` to read it and close before dropping it. */
  private refuse(connection: Connection, code: ErrorCodeName, reason: string): void {
    if (connection.phase >= CLOSING) return
    if (connection.phase === WAITING) this.leaveWaiting(connection)
    this.awaitingHello.delete(connection)
    connection.phase = CLOSING
    connection.decoder = undefined
    connection.nonce = undefined
    connection.sessionId = undefined
    this.hooks.metrics.refused(code)
    connection.deadline = performance.now() + this.options.lingerMs
    this.lingering.add(connection)
    const socket = connection.socket
    socket.end(encodeFrame(errorFrame(ErrorCode[code], reason)))
    // Keep reading (and discarding) so that the client's FIN is seen and the socket closes as soon as it can.
    socket.resume()
  }

  private fail(connection: Connection): void {
    if (connection.session !== undefined) this.closePair(connection, "reset")
    else this.refuse(connection, "internal", "the beacon failed on this connection: connect again")
  }

  private closePair(connection: Connection, reason: EndReason): void {
    const session = connection.session
    if (session !== undefined) session.reason ??= reason
    connection.socket.destroy()
    connection.peer?.socket.destroy()
  }

  /** Runs every deadline and PING that is due; called by the shared ticker. */
  tick(now: number): void {
    for (const connection of this.awaitingHello) {
      if (connection.deadline > now) break
      this.refuse(
        connection,
        "hello_timeout",
        `no HELLO within ${this.options.helloTimeoutMs} ms of CHALLENGE: check the client's network and clock`
      )
    }
    for (const connection of this.awaitingReady) {
      if (connection.deadline > now) break
      this.awaitingReady.delete(connection)
      this.closePair(connection, "ready_timeout")
    }
    for (const connection of this.lingering) {
      if (connection.deadline > now) break
      this.lingering.delete(connection)
      connection.socket.destroy()
    }
    for (const connection of this.pairing.expireDue(now)) {
      this.refuse(connection, "wait_expired", "no peer arrived within the client's max wait: connect again")
    }
    for (const connection of this.waiting) {
      if (connection.nextPingAt <= now) {
        if (connection.unansweredPings >= 2) {
          this.leaveWaiting(connection)
          connection.socket.destroy()
          continue
        }
        this.ping(connection)
        connection.nextPingAt = now + this.options.pingIntervalMs
      }
    }
  }

  private ping(connection: Connection): void {
    connection.pingsSent += 1
    connection.unansweredPings += 1
    const frame = Frames.allocFrame(FrameType.Ping, 8)
    frame.writeUInt32BE(this.pingSalt, Frames.HEADER_BYTES)
    frame.writeUInt32BE(connection.pingsSent, Frames.HEADER_BYTES + 4)
    connection.socket.write(frame)
  }

  /** Starts draining: every client that is not paired gets ERROR shutting_down; paired clients keep relaying. */
  startDrain(): void {
    if (this.drainingFlag) return
    this.drainingFlag = true
    for (const connection of this.connections) {
      if (connection.phase <= WAITING) {
        this.refuse(connection, "shutting_down", "the beacon is shutting down: connect again, to it or another beacon")
      }
    }
  }

  /** Calls `callback` once no connection is open (at once if none is). */
  whenIdle(callback: () => void): void {
    if (this.connections.size === 0) callback()
    else this.idleCallbacks.push(callback)
  }

  /** Closes every connection now, recording `reason` on the sessions that are cut. */
  destroyAll(reason: EndReason): void {
    for (const connection of this.connections) {
      if (connection.session !== undefined) connection.session.reason ??= reason
      connection.socket.destroy()
    }
  }
}

const capacityReason: Record<Limit, string> = {
  hash: "too many clients are waiting for this info hash: stop duplicate bridges or brokers, or retry later",
  source: "too many clients are waiting from this address: retry later",
  total: "the beacon has too many waiting clients: retry later or use another beacon"
}
