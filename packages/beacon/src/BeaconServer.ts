/**
 * The beacon relay server: accepts TLS connections, checks each client's HELLO, pairs a bridge with a broker of the
 * same info hash and copies bytes between them, within limits, until it is drained or its scope closes.
 */
import { makeHelloChecker, verifyProof } from "@cloudtaser/pki/HelloCheck"
import { proofInput } from "@cloudtaser/protocol/Hello"
import { Effect, Exit, Option, Runtime, Schema } from "effect"
import type { Scope } from "effect"
import type * as net from "node:net"
import * as tls from "node:tls"
import { BeaconMetrics } from "./BeaconMetrics.ts"
import { Engine } from "./internal/engine.ts"
import type { CheckHello, EngineHooks, SessionSpan, SessionStart } from "./internal/engine.ts"
import { parentSpan } from "./internal/traceparent.ts"

/** The ALPN protocol name of beacon protocol version 1. */
export const ALPN_PROTOCOL = "cloudtaser-beacon/1"

/**
 * The key exchange groups the beacon offers, most preferred first: the hybrid post-quantum group, then classical
 * groups for clients whose TLS library lacks it.
 */
export const ECDH_CURVES = "X25519MLKEM768:X25519:P-256:P-384"

/** How the beacon listens and what it allows. */
export interface BeaconOptions {
  /** Address to listen on. */
  readonly host: string
  /** Port to listen on; 0 picks a free one (read it back from `address`). */
  readonly port: number
  /** The beacon's own certificate (chain) and private key, as PEM. */
  readonly tls: { readonly certPem: string; readonly keyPem: string }
  /** Time from CHALLENGE to a complete HELLO, and from PAIRED to READY; also bounds the TLS handshake. */
  readonly helloTimeoutMs: number
  /** Interval of PINGs to waiting clients, announced in WAITING. */
  readonly pingIntervalMs: number
  /** The longest any client may wait, whatever its HELLO asks for. */
  readonly maxWaitCapMs: number
  /** Most clients of one role waiting for one info hash. */
  readonly maxWaitingPerHash: number
  /** Most clients waiting from one source address. */
  readonly maxWaitingPerSource: number
  /** Most clients waiting in all. */
  readonly maxWaitingTotal: number
  /** Most open TCP connections; beyond it new connections are closed at once, before TLS. */
  readonly maxConnections: number
  /** How long `drain` lets paired sessions run before it closes them. */
  readonly drainDeadlineMs: number
}

/** What `BeaconServer.make` needs: the TLS credentials, and any option that differs from the defaults. */
export type BeaconConfig = Partial<Omit<BeaconOptions, "tls">> & Pick<BeaconOptions, "tls">

/**
 * The defaults. The waiting limits leave room for a bridge pool per beacon and for many clients behind one NAT
 * address, while keeping a single info hash or address from taking the whole beacon.
 */
export const defaultBeaconOptions: Omit<BeaconOptions, "tls"> = {
  host: "0.0.0.0",
  port: 443,
  helloTimeoutMs: 10_000,
  pingIntervalMs: 20_000,
  maxWaitCapMs: 3_600_000,
  maxWaitingPerHash: 4_096,
  maxWaitingPerSource: 10_000,
  maxWaitingTotal: 50_000,
  maxConnections: 100_000,
  drainDeadlineMs: 30_000
}

/** A running beacon. */
export interface BeaconHandle {
  /** Where it listens; `port` is the real one when the options asked for 0. */
  readonly address: { readonly host: string; readonly port: number }
  /** Whether `drain` has started. */
  readonly draining: boolean
  /** Open client connections. */
  readonly connections: number
  /** Clients waiting for a peer. */
  readonly waiting: number
  /**
   * Stops accepting, sends ERROR shutting_down to every client that is not paired, lets paired sessions run until
   * `drainDeadlineMs`, then closes them. Completes when no connection is left.
   */
  readonly drain: Effect.Effect<void>
}

/** The beacon could not start. */
export class BeaconStartError extends Schema.TaggedError<BeaconStartError>()("BeaconStartError", {
  reason: Schema.Literal("tls_credentials", "address_in_use", "permission_denied", "listen_failed"),
  host: Schema.String,
  port: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    const where = `${this.host}:${this.port}`
    switch (this.reason) {
      case "tls_credentials":
        return `the beacon's TLS certificate or key is unusable (${this.detail}): give a PEM certificate and its ` +
          "matching PEM private key"
      case "address_in_use":
        return `${where} is already in use: stop the other process or choose another --port`
      case "permission_denied":
        return `not allowed to listen on ${where}: run with the capability to bind low ports or choose a port ` +
          "above 1023"
      case "listen_failed":
        return `cannot listen on ${where} (${this.detail}): check --host and --port`
    }
  }
}

const proofRefusal = {
  code: "proof_invalid",
  reason: "the beacon refused the proof: the signature does not verify under the leaf certificate's key, so the " +
    "leaf key and certificate do not belong together; re-run `cloudtaser target connect`"
} as const

const makeCheckHello = (): CheckHello => {
  const checker = makeHelloChecker()
  return (hello, nonce) => {
    const checked = checker({
      role: hello.role,
      infoHash: hello.infoHash,
      caDer: hello.caDer,
      leafDer: hello.leafDer,
      now: new Date()
    })
    if (checked._tag === "Left") {
      return { code: checked.left.code, reason: `the beacon refused the HELLO: ${checked.left.message}` }
    }
    return verifyProof(checked.right, proofInput(nonce, hello.role, hello.infoHash), hello.signature)
      ? undefined
      : proofRefusal
  }
}

const selectAlpn = (info: { readonly protocols: ReadonlyArray<string> }): string | undefined =>
  info.protocols.includes(ALPN_PROTOCOL) ? ALPN_PROTOCOL : undefined

// One shared ticker serves every deadline and PING; its period bounds how late one fires.
const tickPeriod = (options: BeaconOptions): number =>
  Math.min(250, Math.max(5, Math.floor(Math.min(options.helloTimeoutMs, options.pingIntervalMs) / 10)))

const startError = (options: BeaconOptions, cause: unknown): BeaconStartError => {
  const code = (cause as { readonly code?: unknown } | undefined)?.code
  const detail = cause instanceof Error ? cause.message : String(cause)
  const reason = code === "EADDRINUSE"
    ? "address_in_use"
    : code === "EACCES" || code === "EPERM"
    ? "permission_denied"
    : "listen_failed"
  return new BeaconStartError({ reason, host: options.host, port: options.port, detail })
}

/**
 * Starts a beacon in the current scope and returns its handle; closing the scope closes the listener and every
 * connection at once (call `drain` first for a graceful stop). Metrics go to `BeaconMetrics`; each relay session is
 * one `beacon.session` span on the current tracer, the child of the client's traceparent when its HELLO carried one.
 * The pairing latency metric runs from the later client's complete HELLO to PAIRED, so it includes the proof check.
 */
export const make: (
  config: BeaconConfig
) => Effect.Effect<BeaconHandle, BeaconStartError, BeaconMetrics | Scope.Scope> = Effect.fn("BeaconServer.make")(
  function*(config: BeaconConfig) {
    const metrics = yield* BeaconMetrics
    const runtime = yield* Effect.runtime<never>()
    const clock = yield* Effect.clock
    const options: BeaconOptions = { ...defaultBeaconOptions, ...config }

    // Reading the credentials once up front turns a bad certificate or key into a clear error before listening.
    yield* Effect.try({
      try: () => tls.createSecureContext({ cert: options.tls.certPem, key: options.tls.keyPem }),
      catch: (cause) =>
        new BeaconStartError({
          reason: "tls_credentials",
          host: options.host,
          port: options.port,
          detail: cause instanceof Error ? cause.message : String(cause)
        })
    })

    // The span is made when the session ends, with the start time it had: a session in progress then holds a closure
    // instead of a span, and no effect runs per session (running one cost about as much as checking the proof).
    const tracer = yield* Effect.tracer
    const startSpan = (start: SessionStart): SessionSpan => {
      const startedAt = clock.unsafeCurrentTimeNanos()
      return {
        end: (end) => {
          const endedAt = clock.unsafeCurrentTimeNanos()
          const parent = start.traceparent === undefined ? undefined : parentSpan(start.traceparent)
          const span = tracer.span(
            "beacon.session",
            parent === undefined ? Option.none() : Option.some(parent),
            runtime.context,
            [],
            startedAt,
            "server",
            // Without a client's traceparent the session starts its own trace, whatever span started the beacon.
            parent === undefined ? rootSpan : undefined
          )
          span.attribute("beacon.info_hash", start.shortHash)
          span.attribute("beacon.wait_ms", start.waitMs)
          span.attribute("beacon.bytes_bridge_to_broker", end.bytesBridgeToBroker)
          span.attribute("beacon.bytes_broker_to_bridge", end.bytesBrokerToBridge)
          span.attribute("beacon.duration_ms", Number((endedAt - startedAt) / 1_000_000n))
          span.attribute("end_reason", end.reason)
          span.end(endedAt, Exit.void)
        }
      }
    }

    const hooks: EngineHooks = {
      metrics,
      checkHello: makeCheckHello(),
      startSpan,
      onDefect: (defect) => Runtime.runFork(runtime, Effect.logError("beacon connection failed", defect).pipe(annotate))
    }
    const engine = new Engine({
      helloTimeoutMs: options.helloTimeoutMs,
      pingIntervalMs: options.pingIntervalMs,
      maxWaitCapMs: options.maxWaitCapMs,
      limits: {
        perHash: options.maxWaitingPerHash,
        perSource: options.maxWaitingPerSource,
        total: options.maxWaitingTotal
      },
      lingerMs: Math.min(options.helloTimeoutMs, 5_000)
    }, hooks)

    // Every TCP connection until it closes, so that closing the scope also ends those still in their handshake.
    const sockets = new Set<net.Socket>()
    function forgetSocket(this: net.Socket) {
      sockets.delete(this)
    }

    let listening = false
    const stopAccepting = () => {
      if (!listening) return
      listening = false
      server.close()
    }

    const server = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const server = tls.createServer({
          cert: options.tls.certPem,
          key: options.tls.keyPem,
          minVersion: "TLSv1.2",
          ecdhCurve: ECDH_CURVES,
          ALPNCallback: selectAlpn,
          allowHalfOpen: true,
          noDelay: true,
          keepAlive: true,
          keepAliveInitialDelay: 60_000,
          handshakeTimeout: options.helloTimeoutMs
        })
        server.maxConnections = options.maxConnections
        server.on("connection", (socket: net.Socket) => {
          sockets.add(socket)
          socket.on("close", forgetSocket)
        })
        server.on("secureConnection", (socket) => engine.accept(socket))
        // A failed handshake is the client's affair: Node has closed its socket already.
        server.on("tlsClientError", () => {})
        return server
      }),
      (server) =>
        Effect.async<void>((resume) => {
          if (listening) {
            listening = false
            server.close()
          }
          engine.destroyAll("shutdown")
          // Connections still in their TLS handshake are not the engine's yet.
          for (const socket of sockets) socket.destroy()
          engine.whenIdle(() => resume(Effect.void))
        })
    )

    yield* Effect.async<void, BeaconStartError>((resume) => {
      const onError = (cause: Error) => resume(Effect.fail(startError(options, cause)))
      server.once("error", onError)
      server.listen(options.port, options.host, () => {
        server.removeListener("error", onError)
        listening = true
        resume(Effect.void)
      })
    })
    server.on("error", (cause) => Runtime.runFork(runtime, Effect.logError("beacon listener failed", cause)))

    yield* Effect.acquireRelease(
      Effect.sync(() =>
        setInterval(() => {
          try {
            engine.tick(performance.now())
          } catch (defect) {
            hooks.onDefect(defect)
          }
        }, tickPeriod(options))
      ),
      (ticker) => Effect.sync(() => clearInterval(ticker))
    )

    const bound = server.address()
    const address = typeof bound === "object" && bound !== null
      ? { host: bound.address, port: bound.port }
      : { host: options.host, port: options.port }
    yield* Effect.logInfo("beacon relay started").pipe(
      Effect.annotateLogs({ host: address.host, port: address.port }),
      annotate
    )

    const waitIdle = Effect.async<void>((resume) => engine.whenIdle(() => resume(Effect.void)))
    const drain = Effect.gen(function*() {
      if (!engine.draining) {
        yield* Effect.logInfo("beacon draining").pipe(
          Effect.annotateLogs({ connections: engine.size, deadline_ms: options.drainDeadlineMs }),
          annotate
        )
      }
      stopAccepting()
      engine.startDrain()
      const finished = yield* waitIdle.pipe(Effect.timeoutOption(options.drainDeadlineMs))
      if (finished._tag === "None") {
        engine.destroyAll("drain_deadline")
        yield* waitIdle
      }
    })

    return {
      address,
      get draining() {
        return engine.draining
      },
      get connections() {
        return engine.size
      },
      get waiting() {
        return engine.waitingCount
      },
      drain
    } satisfies BeaconHandle
  }
)

const annotate = Effect.annotateLogs({ component: "beacon" })

const rootSpan = { root: true } as const
