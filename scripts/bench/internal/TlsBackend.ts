/**
 * The TLS server at the far end of the direct and haproxy paths, run inside the load generator like the beacon's
 * bridge clients are, so that both relays are measured with the same work at the ends.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import type { AddressInfo } from "node:net"
import { connect, createSecureContext, createServer, type TLSSocket } from "node:tls"
import { type Session, type SessionOpener, trackSocket, withDeadline } from "./Sessions.ts"
import { nowMs } from "./Stats.ts"

const TOKEN_BYTES = 8
const SETUP_TIMEOUT_MS = 15_000

// Shared by every client, as the beacon's clients share theirs (see PairingClient.ts).
const clientContext = createSecureContext({})

/** The running backend: its port, and session openers for any address that leads to it. */
export interface TlsBackend {
  readonly port: number
  /** Opens sessions by connecting with TLS to `port` on 127.0.0.1, which is the backend itself or a relay to it. */
  readonly opener: (port: number) => SessionOpener
  /** Server-side sockets open now. */
  readonly openSockets: () => number
}

/**
 * Starts the backend on 127.0.0.1 with an ephemeral port. Each client announces itself with an 8-byte token as its
 * first bytes, so that the backend can hand out the two ends of the same session.
 */
export const startTlsBackend = (credentials: { readonly key: string; readonly cert: string }) =>
  Effect.gen(function*() {
    const expected = new Map<string, (socket: TLSSocket) => void>()
    const sockets = new Set<TLSSocket>()
    const server = createServer({ key: credentials.key, cert: credentials.cert }, (socket) => {
      socket.setNoDelay(true)
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
      let head = Buffer.alloc(0)
      const readToken = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk])
        if (head.length < TOKEN_BYTES) return
        socket.removeListener("data", readToken)
        socket.pause()
        if (head.length > TOKEN_BYTES) socket.unshift(head.subarray(TOKEN_BYTES))
        const token = head.subarray(0, TOKEN_BYTES).toString("hex")
        const claim = expected.get(token)
        expected.delete(token)
        if (claim === undefined) socket.destroy()
        else claim(socket)
      }
      socket.on("data", readToken)
    })
    server.maxConnections = 50_000
    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    let counter = 0n
    const opener = (port: number): SessionOpener => ({
      open: async () => {
        const tokenBytes = Buffer.alloc(TOKEN_BYTES)
        tokenBytes.writeBigUInt64BE(++counter)
        const token = tokenBytes.toString("hex")
        const startedAt = nowMs()
        const client = trackSocket(
          connect({ host: "127.0.0.1", port, secureContext: clientContext, rejectUnauthorized: false })
        )
        let onError: (error: Error) => void = () => {}
        let onClose: () => void = () => {}
        const arrived = new Promise<TLSSocket>((resolve, reject) => {
          expected.set(token, resolve)
          onError = reject
          onClose = () => reject(new Error("the connection closed before the session was established"))
          client.once("error", onError)
          client.once("close", onClose)
        })
        client.setNoDelay(true)
        client.write(tokenBytes)
        try {
          const server = await withDeadline(arrived, SETUP_TIMEOUT_MS, "session setup")
          const setupMs = nowMs() - startedAt
          client.removeListener("close", onClose)
          client.removeListener("error", onError)
          client.on("error", () => client.destroy())
          const session: Session = { client, server }
          return { session, setupMs }
        } catch (error) {
          expected.delete(token)
          client.destroy()
          throw error
        }
      }
    })
    return {
      port: (server.address() as AddressInfo).port,
      opener,
      openSockets: () => sockets.size
    } satisfies TlsBackend
  }) satisfies Effect.Effect<TlsBackend, Error, Scope.Scope>
