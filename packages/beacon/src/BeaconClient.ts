/**
 * The client side of the beacon protocol: connects to a beacon over TLS, proves the leaf key in HELLO, waits
 * (answering PINGs) until the beacon pairs it, and hands over the socket that from then on carries the peer's bytes.
 */
import { readProofKey, signProof } from "@cloudtaser/pki/HelloCheck"
import { errorCodeName } from "@cloudtaser/protocol/ErrorCode"
import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { encodeFrame, pong, ready, Role } from "@cloudtaser/protocol/Frame"
import type { Frame } from "@cloudtaser/protocol/Frame"
import { FrameDecoder } from "@cloudtaser/protocol/FrameDecoder"
import { MAX_WAIT_UNBOUNDED, proofInput } from "@cloudtaser/protocol/Hello"
import { Effect, Either, Schema } from "effect"
import type { Scope } from "effect"
import type { KeyObject } from "node:crypto"
import * as tls from "node:tls"
import { ALPN_PROTOCOL, ECDH_CURVES } from "./BeaconServer.ts"

/** How to reach a beacon and who to be there. */
export interface ConnectOptions {
  readonly host: string
  readonly port: number
  /** The TLS server name to ask for and check; defaults to `host`. */
  readonly servername?: string | undefined
  /** CA bundle (PEM) that the beacon's certificate must chain to; the system roots when absent. */
  readonly caPem?: string | undefined
  /** `false` skips checking the beacon's certificate: for tests only. */
  readonly rejectUnauthorized?: boolean | undefined
  readonly role: "bridge" | "broker"
  /** The pairing CA certificate, DER. */
  readonly caDer: Uint8Array
  /** This side's leaf certificate, DER, issued by the CA. */
  readonly leafDer: Uint8Array
  /** The leaf's private key, PEM (or an already read key). */
  readonly leafKey: string | KeyObject
  /** SHA-256 of `caDer`. */
  readonly infoHash: Uint8Array
  /** How long to wait for a peer: 0 only pairs with a client already waiting; `Infinity` as long as allowed. */
  readonly maxWaitMs: number
  /** A W3C traceparent, so that the beacon's session span joins the caller's trace. */
  readonly traceparent?: string | undefined
  /** Time allowed for TCP, TLS, CHALLENGE and the answer to HELLO; default 10 s. */
  readonly connectTimeoutMs?: number | undefined
  /** Called when the beacon has queued this client, before any peer arrived. */
  readonly onWaiting?:
    | ((waiting: { readonly sessionId: Uint8Array; readonly pingIntervalMs: number }) => void)
    | undefined
}

/** A paired connection. */
export interface BeaconSession {
  /**
   * Carries only the peer's bytes from now on; READY has been sent and any bytes that came right after PAIRED are
   * back at the front of the stream. It is paused: `pipe` it or call `resume` after adding a 'data' listener.
   * It allows half-open use (the peer's end does not end this side), so call `end` when done sending.
   * The scope of `connect` owns it and destroys it when it closes.
   */
  readonly socket: tls.TLSSocket
  /** The id both paired clients received in PAIRED. */
  readonly sessionId: Uint8Array
  /** Whether the beacon queued this client (WAITING) before a peer arrived. */
  readonly waited: boolean
}

const advice: Record<ErrorCodeName, string> = {
  bad_frame: "the beacon did not understand this client; update cloudtaser so that both speak cloudtaser-beacon/1",
  unsupported_version: "the beacon speaks another protocol version; update cloudtaser or use a beacon of the same " +
    "version",
  hello_timeout: "the beacon gave up waiting for this client's HELLO; the network to the beacon is too slow or " +
    "stalls, check it",
  proof_invalid: "the beacon refused the proof: the signature does not verify under the leaf certificate, so the " +
    "leaf key and certificate do not belong together; re-run `cloudtaser target connect`",
  hash_mismatch: "the beacon refused the HELLO: the CA certificate does not hash to the info hash; re-run " +
    "`cloudtaser target connect` so that both sides use the same CA and info hash",
  cert_invalid: "the beacon refused the certificates (not a CA, not issued by it, expired, wrong key usage or key " +
    "type); re-run `cloudtaser target connect` to issue them again",
  wait_expired: "no peer arrived within the max wait; check that the other side runs with the same info hash, " +
    "then connect again",
  capacity: "the beacon has too many waiting clients; retry later or use another beacon",
  shutting_down: "the beacon is shutting down; connect again, to another beacon if it persists",
  frame_too_large: "the beacon refused an oversized frame; update cloudtaser so that both speak cloudtaser-beacon/1",
  internal: "the beacon failed on this connection; connect again"
}

const retryableCodes: ReadonlySet<string> = new Set([
  "hello_timeout",
  "wait_expired",
  "capacity",
  "shutting_down",
  "internal"
])

/** The beacon sent ERROR and closed the connection. */
export class BeaconRefused extends Schema.TaggedError<BeaconRefused>()("BeaconRefused", {
  /** The error code number from the ERROR frame. */
  code: Schema.Number,
  /** Its name, or `"unknown"` for a code this version does not define. */
  codeName: Schema.String,
  /** The beacon's own words. */
  reason: Schema.String,
  address: Schema.String
}) {
  override get message(): string {
    const explanation = this.codeName in advice
      ? advice[this.codeName as ErrorCodeName]
      : `the beacon refused with error code ${this.code}, which this version does not know; update cloudtaser`
    return `${explanation} (beacon ${this.address}: ${this.reason})`
  }

  /** Whether connecting again, unchanged, can succeed. */
  get retryable(): boolean {
    return retryableCodes.has(this.codeName)
  }
}

/** The connection to the beacon failed before pairing, without an ERROR from the beacon. */
export class BeaconConnectionError extends Schema.TaggedError<BeaconConnectionError>()("BeaconConnectionError", {
  reason: Schema.Literal("unreachable", "untrusted", "closed", "silent", "protocol", "leaf_key"),
  address: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    const where = this.address
    switch (this.reason) {
      case "unreachable":
        return `cannot reach the beacon at ${where} (${this.detail}); check the address and that outbound TCP to ` +
          "it is allowed"
      case "untrusted":
        return `the beacon at ${where} presented a certificate this client does not trust (${this.detail}); give ` +
          "the beacon's CA bundle or check the address"
      case "closed":
        return `the beacon at ${where} closed the connection before pairing (${this.detail}); connect again`
      case "silent":
        return `the beacon at ${where} went silent (${this.detail}); the path to it drops idle connections or the ` +
          "beacon is overloaded: connect again"
      case "protocol":
        return `the beacon at ${where} broke the protocol (${this.detail}); check that the address is a ` +
          "cloudtaser beacon"
      case "leaf_key":
        return `cannot sign the proof: ${this.detail}`
    }
  }
}

const certificateErrorCodes = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME|ALTNAME|UNABLE_TO_GET_ISSUER/

const describe = (cause: unknown): string => {
  const code = (cause as { readonly code?: unknown } | undefined)?.code
  const message = cause instanceof Error ? cause.message : String(cause)
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message
}

/**
 * Connects to a beacon and waits until it pairs this client with a peer. The returned socket belongs to the
 * current scope. Fails with `BeaconRefused` when the beacon sends ERROR, and with `BeaconConnectionError` when the
 * connection fails, closes, or hears neither PING nor PAIRED for three ping intervals.
 */
export const connect: (
  options: ConnectOptions
) => Effect.Effect<BeaconSession, BeaconRefused | BeaconConnectionError, Scope.Scope> = Effect.fn(
  "BeaconClient.connect"
)(function*(options: ConnectOptions) {
  const address = `${options.host}:${options.port}`
  const key = yield* Either.mapLeft(
    readProofKey(typeof options.leafKey === "string" ? options.leafKey : exportKey(options.leafKey)),
    (error) => new BeaconConnectionError({ reason: "leaf_key", address, detail: error.message })
  )
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000

  // Node passes allowHalfOpen on to the TLS socket, though its types do not list it for tls.connect.
  const connectOptions: tls.ConnectionOptions & { readonly allowHalfOpen: boolean } = {
    host: options.host,
    port: options.port,
    servername: options.servername ?? (isIpAddress(options.host) ? undefined : options.host),
    ...(options.caPem === undefined ? {} : { ca: options.caPem }),
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ALPNProtocols: [ALPN_PROTOCOL],
    ecdhCurve: ECDH_CURVES,
    minVersion: "TLSv1.2",
    allowHalfOpen: true
  }
  const socket = yield* Effect.acquireRelease(
    Effect.sync(() => tls.connect(connectOptions).setNoDelay(true)),
    (socket) => Effect.sync(() => socket.destroy())
  )

  return yield* Effect.async<BeaconSession, BeaconRefused | BeaconConnectionError>((resume) => {
    const decoder = new FrameDecoder()
    const role = options.role === "bridge" ? Role.bridge : Role.broker
    let secured = false
    let challenged = false
    let waited = false
    let done = false
    let interval = 0
    let timer: ReturnType<typeof setTimeout> | undefined

    // Only failures come through here: the connection is of no further use, so it is closed at once.
    const finish = (outcome: Effect.Effect<never, BeaconRefused | BeaconConnectionError>) => {
      if (done) return
      done = true
      cleanup()
      socket.destroy()
      resume(outcome)
    }
    const fail = (reason: BeaconConnectionError["reason"], detail: string) =>
      finish(Effect.fail(new BeaconConnectionError({ reason, address, detail })))
    const expectWithin = (ms: number, detail: string) => {
      if (timer !== undefined) clearTimeout(timer)
      timer = setTimeout(() => fail("silent", detail), ms)
    }

    const onFrame = (frame: Frame): void => {
      switch (frame._tag) {
        case "Challenge": {
          if (challenged || frame.version !== 1) return fail("protocol", "unexpected CHALLENGE")
          challenged = true
          const maxWaitMs = Number.isFinite(options.maxWaitMs)
            ? Math.max(0, Math.min(Math.floor(options.maxWaitMs), MAX_WAIT_UNBOUNDED))
            : MAX_WAIT_UNBOUNDED
          const signature = signProof(key, proofInput(frame.nonce, role, options.infoHash))
          socket.write(encodeFrame({
            _tag: "Hello",
            version: 1,
            role,
            infoHash: options.infoHash,
            maxWaitMs,
            caDer: options.caDer,
            leafDer: options.leafDer,
            signature,
            traceparent: options.traceparent
          }))
          expectWithin(connectTimeoutMs, `no answer to HELLO within ${connectTimeoutMs} ms`)
          return
        }
        case "Waiting": {
          if (!challenged || waited) return fail("protocol", "unexpected WAITING")
          waited = true
          const silence = 3 * frame.pingIntervalMs
          interval = frame.pingIntervalMs
          expectWithin(silence, `neither PING nor PAIRED for ${silence} ms`)
          options.onWaiting?.({ sessionId: frame.sessionId, pingIntervalMs: frame.pingIntervalMs })
          return
        }
        case "Ping": {
          if (!waited) return fail("protocol", "PING before WAITING")
          socket.write(encodeFrame(pong(frame.data)))
          expectWithin(3 * interval, `neither PING nor PAIRED for ${3 * interval} ms`)
          return
        }
        case "Paired": {
          if (!challenged) return fail("protocol", "PAIRED before CHALLENGE")
          socket.write(encodeFrame(ready))
          socket.pause()
          const rest = decoder.takeRemaining()
          cleanup()
          if (rest.length > 0) socket.unshift(Buffer.from(rest.buffer, rest.byteOffset, rest.length))
          done = true
          resume(Effect.succeed({ socket, sessionId: frame.sessionId, waited }))
          return
        }
        case "Error": {
          const name = errorCodeName(frame.code)
          return finish(Effect.fail(
            new BeaconRefused({ code: frame.code, codeName: name ?? "unknown", reason: frame.reason, address })
          ))
        }
        default:
          return fail("protocol", `unexpected ${frame._tag.toUpperCase()} from the beacon`)
      }
    }

    const onData = (chunk: Buffer) => {
      decoder.push(chunk)
      while (!done) {
        const result = decoder.next()
        if (result._tag === "NeedMore") return
        if (result._tag === "Failed") return fail("protocol", result.error.message)
        onFrame(result.frame)
      }
    }
    const onSecure = () => {
      secured = true
    }
    const onError = (cause: Error) => {
      const code = (cause as { readonly code?: unknown }).code
      if (!secured && typeof code === "string" && certificateErrorCodes.test(code)) {
        fail("untrusted", describe(cause))
      } else if (!secured) {
        fail("unreachable", describe(cause))
      } else {
        fail("closed", describe(cause))
      }
    }
    const onClose = () => fail("closed", challenged ? "closed while waiting" : "closed before CHALLENGE")
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      socket.removeListener("secureConnect", onSecure)
      socket.removeListener("data", onData)
      socket.removeListener("error", onError)
      socket.removeListener("close", onClose)
      socket.removeListener("end", onClose)
      // Errors after the hand-over belong to the new owner; until it listens, one must not crash the process.
      socket.on("error", ignore)
    }

    socket.on("secureConnect", onSecure)
    socket.on("data", onData)
    socket.on("error", onError)
    socket.on("close", onClose)
    // The socket is half-open capable, so the beacon's FIN shows up as 'end' and not as 'close'.
    socket.on("end", onClose)
    expectWithin(connectTimeoutMs, `no CHALLENGE within ${connectTimeoutMs} ms`)
    return Effect.sync(() => {
      if (!done) {
        done = true
        cleanup()
      }
    })
  })
})

const ignore = () => {}

const isIpAddress = (host: string): boolean => /^[0-9.]+$/.test(host) || host.includes(":")

const exportKey = (key: KeyObject): string => key.export({ format: "pem", type: "pkcs8" }).toString()
