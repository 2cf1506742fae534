/**
 * A raw TLS client that speaks frames by hand, so tests can behave the way no correct client would: send frames out
 * of order, oversized headers, broken HELLOs, or nothing at all.
 */
import { signProof } from "@cloudtaser/pki/HelloCheck"
import { encodeFrame } from "@cloudtaser/protocol/Frame"
import type { Frame } from "@cloudtaser/protocol/Frame"
import { FrameDecoder } from "@cloudtaser/protocol/FrameDecoder"
import { proofInput } from "@cloudtaser/protocol/Hello"
import { Effect } from "effect"
import * as net from "node:net"
import * as tls from "node:tls"
import type { BeaconHandle } from "../../src/BeaconServer.ts"
import type { Pairing } from "./Beacon.ts"

/** What the raw client saw next: a frame, or the end of the connection. */
export type Received = Frame | { readonly _tag: "Closed" }

/** A raw client connection. */
export interface RawClient {
  readonly socket: tls.TLSSocket
  /** The TCP connection under the TLS, for failures TLS cannot make (a reset). */
  readonly tcp: net.Socket
  /** The next frame from the beacon, or Closed once it closed without one. */
  readonly next: Effect.Effect<Received>
  /** The next frame, skipping PINGs. */
  readonly nextNotPing: Effect.Effect<Received>
  readonly write: (bytes: Uint8Array) => Effect.Effect<void>
  /** Every byte that came after PAIRED: the peer's. */
  readonly peerBytes: () => Buffer
}

/** Where a raw client connects: a beacon's handle, or anything else listening on 127.0.0.1. */
export type Target = Pick<BeaconHandle, "address">

/** Opens a TLS connection to the beacon and starts collecting frames. */
export const rawConnect = (beacon: Target, options: { readonly alpn?: ReadonlyArray<string> } = {}) =>
  Effect.acquireRelease(
    Effect.async<{ readonly socket: tls.TLSSocket; readonly tcp: net.Socket }, Error>((resume) => {
      const tcp = net.connect({ host: "127.0.0.1", port: beacon.address.port })
      const socket = tls.connect({
        socket: tcp,
        rejectUnauthorized: false,
        ALPNProtocols: options.alpn === undefined ? ["cloudtaser-beacon/1"] : [...options.alpn]
      })
      socket.once("secureConnect", () => resume(Effect.succeed({ socket, tcp })))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    ({ socket, tcp }) => Effect.sync(() => (socket.destroy(), tcp.destroy()))
  ).pipe(Effect.map(({ socket, tcp }) => wrap(socket, tcp)))

const wrap = (socket: tls.TLSSocket, tcp: net.Socket): RawClient => {
  const decoder = new FrameDecoder()
  const received: Array<Received> = []
  const waiters: Array<(received: Received) => void> = []
  let ended = false
  let paired = false
  const peerBytes: Array<Buffer> = []
  const deliver = (item: Received) => {
    const waiter = waiters.shift()
    if (waiter !== undefined) waiter(item)
    else received.push(item)
  }
  const decodeAll = () => {
    for (;;) {
      const result = decoder.next()
      if (result._tag !== "Frame") return
      deliver(result.frame)
      // After PAIRED the rest is the peer's bytes, not frames.
      if (result.frame._tag === "Paired") {
        paired = true
        const rest = decoder.takeRemaining()
        if (rest.length > 0) peerBytes.push(Buffer.from(rest))
        return
      }
    }
  }
  socket.on("data", (chunk: Buffer) => {
    if (paired) {
      peerBytes.push(chunk)
      return
    }
    decoder.push(chunk)
    decodeAll()
  })
  const onGone = () => {
    if (ended) return
    ended = true
    deliver({ _tag: "Closed" })
  }
  socket.on("end", onGone)
  socket.on("close", onGone)
  socket.on("error", () => {})

  const next: Effect.Effect<Received> = Effect.async<Received>((resume) => {
    const item = received.shift()
    if (item !== undefined) {
      if (item._tag === "Closed") received.unshift(item)
      return resume(Effect.succeed(item))
    }
    if (ended) return resume(Effect.succeed({ _tag: "Closed" }))
    waiters.push((item) => resume(Effect.succeed(item)))
  })
  const nextNotPing: Effect.Effect<Received> = Effect.flatMap(
    next,
    (item) => item._tag === "Ping" ? nextNotPing : Effect.succeed(item)
  )
  return {
    socket,
    tcp,
    next,
    nextNotPing,
    write: (bytes) => Effect.sync(() => void socket.write(bytes)),
    peerBytes: () => Buffer.concat(peerBytes)
  }
}

/** HELLO fields a test may bend. */
export interface HelloOverrides {
  readonly role?: 1 | 2
  readonly version?: number
  readonly maxWaitMs?: number
  readonly infoHash?: Uint8Array
  readonly caDer?: Uint8Array
  readonly leafDer?: Uint8Array
  /** Signs with this key instead of the leaf's own. */
  readonly signingKey?: string
  readonly traceparent?: string
}

/** The HELLO frame for one side of a pairing, answering this CHALLENGE nonce. */
export const helloFrame = (
  pairing: Pairing,
  side: "bridge" | "broker",
  nonce: Uint8Array,
  overrides: HelloOverrides = {}
): Uint8Array => {
  const role = overrides.role ?? (side === "bridge" ? 1 : 2)
  const infoHash = overrides.infoHash ?? pairing.infoHash
  const frame = Buffer.from(encodeFrame({
    _tag: "Hello",
    version: 1,
    role,
    infoHash,
    maxWaitMs: overrides.maxWaitMs ?? 30_000,
    caDer: overrides.caDer ?? pairing.caDer,
    leafDer: overrides.leafDer ?? pairing[side].leafDer,
    signature: signProof(overrides.signingKey ?? pairing[side].leafKey, proofInput(nonce, role, infoHash)),
    traceparent: overrides.traceparent
  }))
  // The version is the first payload byte; the encoder only writes version 1 frames.
  if (overrides.version !== undefined) frame[5] = overrides.version
  return frame
}

/** Connects, reads CHALLENGE and sends HELLO; returns the client for the test to go on with. */
export const rawHello = (
  beacon: Target,
  pairing: Pairing,
  side: "bridge" | "broker",
  overrides: HelloOverrides = {}
) =>
  Effect.gen(function*() {
    const client = yield* rawConnect(beacon)
    const challenge = yield* client.next
    if (challenge._tag !== "Challenge") return yield* Effect.dieMessage(`expected CHALLENGE, got ${challenge._tag}`)
    yield* client.write(helloFrame(pairing, side, challenge.nonce, overrides))
    return client
  })

/** A frame header with a payload length, and no payload. */
export const header = (type: number, length: number): Uint8Array => {
  const bytes = Buffer.alloc(5)
  bytes[0] = type
  bytes.writeUInt32BE(length, 1)
  return bytes
}
