/**
 * A lean beacon client for load generation: raw node:tls, the protocol package's codec, and a HELLO signed with the
 * leaf key, without the reconnects and logging of the real bridge and broker, so that the load generator stays cheap
 * next to the beacon it measures.
 */
import { signProof } from "@cloudtaser/pki/HelloCheck"
import { errorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { encodeFrame, pong, ready, Role } from "@cloudtaser/protocol/Frame"
import { FrameDecoder } from "@cloudtaser/protocol/FrameDecoder"
import { MAX_WAIT_UNBOUNDED, proofInput } from "@cloudtaser/protocol/Hello"
import { connect, createSecureContext, type TLSSocket } from "node:tls"
import type { Identity } from "./Identities.ts"
import { trackSocket } from "./Sessions.ts"
import { nowMs } from "./Stats.ts"

const ALPN = "cloudtaser-beacon/1"
const READY_FRAME = Buffer.from(encodeFrame(ready))

// One context for every client: without it, each connect builds its own, which costs the load generator about as much
// CPU as the handshake's key exchange.
const clientContext = createSecureContext({})

/** One client's way through the exchange. */
export interface PairingClient {
  readonly socket: TLSSocket
  /** When `connect` was called (ms, `performance.now()`). */
  readonly startedAt: number
  /** Resolves on WAITING, or on PAIRED for a client that found a peer waiting. */
  readonly waiting: Promise<void>
  /**
   * Resolves with the time PAIRED was read. By then READY has been written and the socket is paused, holding any
   * bytes that came after PAIRED, so that a reader attached next (and `resume()`) sees the peer's stream from its
   * first byte.
   */
  readonly paired: Promise<number>
}

/** The beacon refused the client or the connection ended before it was paired. */
export class PairingFailure extends Error {}

/**
 * Connects to the beacon at 127.0.0.1:`port` as `role` ("bridge" waits as long as the beacon allows; "broker" asks
 * for the same) and runs CHALLENGE → HELLO → WAITING/PAIRED → READY, answering PINGs while it waits.
 */
export const connectPairingClient = (port: number, identity: Identity, role: "bridge" | "broker"): PairingClient => {
  const startedAt = nowMs()
  const leaf = role === "bridge" ? identity.bridge : identity.broker
  const roleByte = role === "bridge" ? Role.bridge : Role.broker
  const socket = trackSocket(connect({
    host: "127.0.0.1",
    port,
    secureContext: clientContext,
    rejectUnauthorized: false,
    ALPNProtocols: [ALPN]
  }))
  socket.setNoDelay(true)
  const decoder = new FrameDecoder()
  let waitingSettled = false
  let settle: { resolve: (at: number) => void; reject: (error: Error) => void } | undefined
  let resolveWaiting: () => void = () => {}
  let rejectWaiting: (error: Error) => void = () => {}
  const waiting = new Promise<void>((resolve, reject) => {
    resolveWaiting = () => {
      waitingSettled = true
      resolve()
    }
    rejectWaiting = (error) => {
      waitingSettled = true
      reject(error)
    }
  })
  const paired = new Promise<number>((resolve, reject) => {
    settle = { resolve, reject }
  })
  // The caller may await only one of the two; a failure is still reported through the one it awaits.
  waiting.catch(() => {})
  paired.catch(() => {})

  const fail = (error: Error) => {
    socket.removeListener("data", onData)
    socket.removeListener("close", onClose)
    if (!waitingSettled) rejectWaiting(error)
    settle?.reject(error)
    settle = undefined
    socket.destroy()
  }
  const onClose = () => fail(new PairingFailure(`${role}: the beacon closed the connection before PAIRED`))
  const onError = (error: Error) => fail(new PairingFailure(`${role}: ${error.message}`))

  const onData = (chunk: Buffer) => {
    decoder.push(chunk)
    for (;;) {
      const result = decoder.next()
      if (result._tag === "NeedMore") return
      if (result._tag === "Failed") return fail(new PairingFailure(`${role}: ${result.error.message}`))
      const frame = result.frame
      switch (frame._tag) {
        case "Challenge": {
          const signature = signProof(leaf.key, proofInput(frame.nonce, roleByte, identity.infoHash))
          socket.write(encodeFrame({
            _tag: "Hello",
            version: 1,
            role: roleByte,
            infoHash: identity.infoHash,
            maxWaitMs: MAX_WAIT_UNBOUNDED,
            caDer: identity.caDer,
            leafDer: leaf.der,
            signature
          }))
          break
        }
        case "Waiting":
          resolveWaiting()
          break
        case "Ping":
          socket.write(encodeFrame(pong(frame.data)))
          break
        case "Paired": {
          const at = nowMs()
          socket.removeListener("data", onData)
          socket.removeListener("close", onClose)
          socket.pause()
          const rest = decoder.takeRemaining()
          if (rest.length > 0) socket.unshift(Buffer.from(rest))
          socket.write(READY_FRAME)
          resolveWaiting()
          settle?.resolve(at)
          settle = undefined
          return
        }
        case "Error":
          return fail(
            new PairingFailure(
              `${role}: the beacon sent ERROR ${errorCodeName(frame.code) ?? frame.code}: ${frame.reason}`
            )
          )
        default:
          return fail(new PairingFailure(`${role}: unexpected ${frame._tag} frame before PAIRED`))
      }
    }
  }
  socket.on("data", onData)
  socket.on("close", onClose)
  socket.on("error", onError)
  return { socket, startedAt, waiting, paired }
}
