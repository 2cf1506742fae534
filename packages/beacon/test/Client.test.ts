import { challenge, encodeFrame, error, paired, ping, waiting } from "@cloudtaser/protocol/Frame"
import type { Frame } from "@cloudtaser/protocol/Frame"
import { FrameDecoder } from "@cloudtaser/protocol/FrameDecoder"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import * as tls from "node:tls"
import * as BeaconClient from "../src/BeaconClient.ts"
import { BeaconMetrics } from "../src/BeaconMetrics.ts"
import type { BeaconHandle } from "../src/BeaconServer.ts"
import type { Pairing } from "./support/Beacon.ts"
import { beaconCertificate, clientOptions, makePairing, readBytes, startBeacon } from "./support/Beacon.ts"

/** A scripted beacon: `script` gets each frame the client sends and the socket to answer on. */
const fakeBeacon = (script: (frame: Frame, socket: tls.TLSSocket) => void) =>
  Effect.gen(function*() {
    const certificate = yield* beaconCertificate
    const server = yield* Effect.acquireRelease(
      Effect.async<tls.Server>((resume) => {
        const server = tls.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (socket) => {
          const decoder = new FrameDecoder()
          socket.on("error", () => {})
          socket.on("data", (chunk) => {
            decoder.push(chunk)
            for (let result = decoder.next(); result._tag === "Frame"; result = decoder.next()) {
              script(result.frame, socket)
            }
          })
          socket.write(encodeFrame(challenge(new Uint8Array(32).fill(1))))
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.sync(() => server.close())
    )
    const address = server.address() as net.AddressInfo
    return { address: { host: "127.0.0.1", port: address.port } } as BeaconHandle
  })

const sessionId = new Uint8Array(16).fill(0xab)

const withFake = (pairing: Pairing, beacon: BeaconHandle, extra: Partial<BeaconClient.ConnectOptions> = {}) =>
  BeaconClient.connect(clientOptions(beacon, pairing, "bridge", extra))

describe("BeaconClient", () => {
  it.scopedLive("answers PINGs with their data, sends READY on PAIRED and hands back the bytes that came with it", () =>
    Effect.gen(function*() {
      const pairing = yield* makePairing()
      const seen: Array<string> = []
      const beacon = yield* fakeBeacon((frame, socket) => {
        seen.push(frame._tag)
        if (frame._tag === "Hello") {
          socket.write(encodeFrame(waiting(sessionId, 1_000)))
          socket.write(encodeFrame(ping(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))))
        } else if (frame._tag === "Pong") {
          expect(Array.from(frame.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
          socket.write(Buffer.concat([encodeFrame(paired(sessionId)), Buffer.from("peer bytes")]))
        } else if (frame._tag === "Ready") {
          socket.write("and more")
        }
      })
      const session = yield* withFake(pairing, beacon)
      expect(session.waited).toBe(true)
      expect(Buffer.from(session.sessionId).equals(Buffer.from(sessionId))).toBe(true)
      expect((yield* readBytes(session.socket, 18)).toString()).toBe("peer bytesand more")
      expect(seen).toEqual(["Hello", "Pong", "Ready"])
    }))

  it.scopedLive("gives up on a beacon that sends neither PING nor PAIRED for three ping intervals", () =>
    Effect.gen(function*() {
      const pairing = yield* makePairing()
      const beacon = yield* fakeBeacon((frame, socket) => {
        if (frame._tag === "Hello") socket.write(encodeFrame(waiting(sessionId, 50)))
      })
      const failure = yield* withFake(pairing, beacon).pipe(Effect.flip)
      expect(failure._tag === "BeaconConnectionError" && failure.reason).toBe("silent")
    }))

  it.scopedLive("reports an error code it does not know and says to update", () =>
    Effect.gen(function*() {
      const pairing = yield* makePairing()
      const beacon = yield* fakeBeacon((frame, socket) => {
        if (frame._tag === "Hello") socket.end(encodeFrame(error(99, "from the future")))
      })
      const failure = yield* withFake(pairing, beacon).pipe(Effect.flip)
      expect(failure._tag).toBe("BeaconRefused")
      expect(failure._tag === "BeaconRefused" && failure.codeName).toBe("unknown")
      expect(failure.message).toContain("update cloudtaser")
      expect(failure.message).toContain("from the future")
    }))

  it.scopedLive("fails as unreachable when nothing listens", () =>
    Effect.gen(function*() {
      const pairing = yield* makePairing()
      const port = yield* Effect.async<number>((resume) => {
        const server = net.createServer().listen(0, "127.0.0.1", () => {
          const { port } = server.address() as net.AddressInfo
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const failure = yield* withFake(pairing, { address: { host: "127.0.0.1", port } } as BeaconHandle).pipe(
        Effect.flip
      )
      expect(failure._tag === "BeaconConnectionError" && failure.reason).toBe("unreachable")
    }))

  it.scopedLive("checks the beacon's certificate unless told not to", () =>
    Effect.gen(function*() {
      const pairing = yield* makePairing()
      const beacon = yield* startBeacon().pipe(Effect.provide(BeaconMetrics.Noop))
      const untrusted = yield* withFake(pairing, beacon, { rejectUnauthorized: undefined }).pipe(Effect.flip)
      expect(untrusted._tag === "BeaconConnectionError" && untrusted.reason).toBe("untrusted")
      const certificate = yield* beaconCertificate
      // Trusted, the client gets as far as the beacon's answer to its HELLO.
      const answered = yield* withFake(pairing, beacon, {
        rejectUnauthorized: undefined,
        caPem: certificate.caPem,
        maxWaitMs: 0
      }).pipe(Effect.flip)
      expect(answered._tag === "BeaconRefused" && answered.codeName).toBe("wait_expired")
    }))

  it.scopedLive("refuses an unreadable leaf key before connecting", () =>
    Effect.gen(function*() {
      const pairing = yield* makePairing()
      const failure = yield* withFake(pairing, { address: { host: "127.0.0.1", port: 1 } } as BeaconHandle, {
        leafKey: "not a key"
      }).pipe(Effect.flip)
      expect(failure._tag === "BeaconConnectionError" && failure.reason).toBe("leaf_key")
    }))
})
