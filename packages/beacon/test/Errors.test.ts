import { makeCa, makeLeaf } from "@cloudtaser/pki/Certificates"
import { infoHash } from "@cloudtaser/pki/InfoHash"
import { ErrorCode } from "@cloudtaser/protocol/ErrorCode"
import type { ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { randomBytes } from "node:crypto"
import * as BeaconClient from "../src/BeaconClient.ts"
import type { BeaconHandle } from "../src/BeaconServer.ts"
import type { Pairing, RecordedMetrics } from "./support/Beacon.ts"
import { clientOptions, eventually, makePairing, readBytes, recordingMetrics, startBeacon } from "./support/Beacon.ts"
import type { RawClient, Received } from "./support/RawClient.ts"
import { header, helloFrame, rawConnect, rawHello } from "./support/RawClient.ts"

/** Asserts that the beacon sent ERROR with this code, then closed. */
const expectError = (client: RawClient, code: ErrorCodeName, received?: Received) =>
  Effect.gen(function*() {
    const frame = received ?? (yield* client.nextNotPing)
    expect(frame._tag === "Error" ? frame.code : frame._tag).toBe(ErrorCode[code])
    expect((yield* client.next)._tag).toBe("Closed")
  })

/** A fresh pair pairs and relays, and the beacon holds nothing for the refused client any more. */
const goodPairStillPairs = (beacon: BeaconHandle, metrics: RecordedMetrics, openBefore = 0) =>
  Effect.gen(function*() {
    yield* eventually(() => metrics.open.count === openBefore && beacon.waiting === 0)
    const pairing = yield* makePairing("good")
    const bridgeFiber = yield* BeaconClient.connect(clientOptions(beacon, pairing, "bridge")).pipe(Effect.fork)
    yield* eventually(() => beacon.waiting === 1)
    const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
    const bridge = yield* Fiber.join(bridgeFiber)
    bridge.socket.write("still works")
    expect((yield* readBytes(broker.socket, 11)).toString()).toBe("still works")
  })

const setup = (overrides: Parameters<typeof startBeacon>[0] = {}) =>
  Effect.gen(function*() {
    const { layer, metrics } = recordingMetrics()
    const beacon = yield* startBeacon(overrides).pipe(Effect.provide(layer))
    const pairing = yield* makePairing()
    return { beacon, metrics, pairing }
  })

const challengeOf = (client: RawClient) =>
  Effect.gen(function*() {
    const frame = yield* client.next
    if (frame._tag !== "Challenge") return yield* Effect.dieMessage(`expected CHALLENGE, got ${frame._tag}`)
    return frame
  })

describe("refusals", () => {
  it.scopedLive("bad_frame: a first frame other than HELLO", () =>
    Effect.gen(function*() {
      const { beacon, metrics } = yield* setup()
      const client = yield* rawConnect(beacon)
      yield* challengeOf(client)
      yield* client.write(Buffer.from("07000000080102030405060708", "hex"))
      yield* expectError(client, "bad_frame")
      expect(metrics.refusals).toEqual(["bad_frame"])
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("bad_frame: an unknown frame type", () =>
    Effect.gen(function*() {
      const { beacon, metrics } = yield* setup()
      const client = yield* rawConnect(beacon)
      yield* challengeOf(client)
      yield* client.write(header(0x09, 0))
      yield* expectError(client, "bad_frame")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("bad_frame: a HELLO whose fields do not fill its payload", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawConnect(beacon)
      const challenge = yield* challengeOf(client)
      const hello = Buffer.from(helloFrame(pairing, "bridge", challenge.nonce))
      const padded = Buffer.concat([hello, Buffer.from([0])])
      padded.writeUInt32BE(hello.length - 5 + 1, 1)
      yield* client.write(padded)
      yield* expectError(client, "bad_frame")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("bad_frame: a frame other than PONG while waiting", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* client.next)._tag).toBe("Waiting")
      expect(beacon.waiting).toBe(1)
      yield* client.write(Buffer.from("0500000000", "hex"))
      yield* expectError(client, "bad_frame")
      yield* goodPairStillPairs(beacon, metrics)
      expect(metrics.waiting).toEqual({ bridge: 0, broker: 0 })
    }))

  it.scopedLive("unsupported_version: a HELLO of version 2", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawHello(beacon, pairing, "bridge", { version: 2 })
      yield* expectError(client, "unsupported_version")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("hello_timeout: no HELLO after CHALLENGE", () =>
    Effect.gen(function*() {
      const { beacon, metrics } = yield* setup({ helloTimeoutMs: 300 })
      const client = yield* rawConnect(beacon)
      yield* challengeOf(client)
      // Half a HELLO does not count.
      yield* client.write(header(0x02, 900))
      yield* expectError(client, "hello_timeout")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("proof_invalid: a proof signed with another key", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawHello(beacon, pairing, "bridge", { signingKey: pairing.broker.leafKey })
      yield* expectError(client, "proof_invalid")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("proof_invalid reaches BeaconClient as a typed error that says what to do", () =>
    Effect.gen(function*() {
      const { beacon, pairing } = yield* setup()
      const error = yield* BeaconClient.connect(
        clientOptions(beacon, pairing, "bridge", { leafKey: pairing.broker.leafKey })
      ).pipe(Effect.flip)
      expect(error._tag).toBe("BeaconRefused")
      if (error._tag !== "BeaconRefused") return
      expect(error.code).toBe(ErrorCode.proof_invalid)
      expect(error.codeName).toBe("proof_invalid")
      expect(error.retryable).toBe(false)
      expect(error.message).toContain("cloudtaser target connect")
    }))

  it.scopedLive("hash_mismatch: an info hash that is not the CA's", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const other = yield* makePairing("other")
      const client = yield* rawHello(beacon, pairing, "bridge", { infoHash: other.infoHash })
      yield* expectError(client, "hash_mismatch")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("cert_invalid: a broker leaf presented as a bridge", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawHello(beacon, pairing, "broker", { role: 1 })
      yield* expectError(client, "cert_invalid")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("cert_invalid: a leaf from another CA, and an expired leaf", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const other: Pairing = yield* makePairing("other")
      const foreign = yield* rawHello(beacon, pairing, "bridge", {
        leafDer: other.bridge.leafDer,
        signingKey: other.bridge.leafKey
      })
      yield* expectError(foreign, "cert_invalid")

      const ca = yield* makeCa({ commonName: "expiring ca" }).pipe(Effect.orDie)
      const old = yield* makeLeaf({
        ca,
        role: "bridge",
        commonName: "old bridge",
        notBefore: new Date(Date.now() - 30 * 24 * 3600 * 1000),
        validityDays: 1
      }).pipe(Effect.orDie)
      const expired = yield* rawHello(beacon, pairing, "bridge", {
        caDer: ca.certDer,
        infoHash: infoHash(ca.certDer),
        leafDer: old.certDer,
        signingKey: old.keyPem
      })
      yield* expectError(expired, "cert_invalid")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("wait_expired: no peer within the max wait", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawHello(beacon, pairing, "bridge", { maxWaitMs: 200 })
      expect((yield* client.next)._tag).toBe("Waiting")
      yield* expectError(client, "wait_expired")
      expect(metrics.waiting.bridge).toBe(0)
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("wait_expired: the beacon caps the max wait", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ maxWaitCapMs: 200 })
      const error = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker", { maxWaitMs: Infinity })).pipe(
        Effect.flip
      )
      expect(error._tag === "BeaconRefused" && error.codeName).toBe("wait_expired")
      expect(error._tag === "BeaconRefused" && error.retryable).toBe(true)
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("capacity: too many waiting for one info hash", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ maxWaitingPerHash: 1 })
      const first = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* first.next)._tag).toBe("Waiting")
      const second = yield* rawHello(beacon, pairing, "bridge")
      yield* expectError(second, "capacity")
      first.socket.destroy()
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("capacity: too many waiting from one source address", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ maxWaitingPerSource: 1 })
      const other = yield* makePairing("other")
      const first = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* first.next)._tag).toBe("Waiting")
      const second = yield* rawHello(beacon, other, "bridge")
      yield* expectError(second, "capacity")
      first.socket.destroy()
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("capacity: too many waiting in all, and only after the HELLO is validated", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ maxWaitingTotal: 1 })
      const other = yield* makePairing("other")
      const first = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* first.next)._tag).toBe("Waiting")
      const forged = yield* rawHello(beacon, other, "bridge", { signingKey: other.broker.leafKey })
      yield* expectError(forged, "proof_invalid")
      const second = yield* rawHello(beacon, other, "bridge")
      yield* expectError(second, "capacity")
      // A client that would pair needs no room to wait in.
      const broker = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker"))
      expect(broker.waited).toBe(false)
      expect((yield* first.nextNotPing)._tag).toBe("Paired")
      first.socket.destroy()
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("frame_too_large: a length over 16384, whatever the type", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const client = yield* rawConnect(beacon)
      yield* challengeOf(client)
      yield* client.write(header(0x02, 16385))
      yield* expectError(client, "frame_too_large")

      const waiting = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* waiting.next)._tag).toBe("Waiting")
      yield* waiting.write(header(0x7f, 0xffffffff))
      yield* expectError(waiting, "frame_too_large")
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("between PAIRED and READY a wrong frame closes both without a frame", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup()
      const bridge = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* bridge.next)._tag).toBe("Waiting")
      const broker = yield* rawHello(beacon, pairing, "broker")
      expect((yield* broker.next)._tag).toBe("Paired")
      expect((yield* bridge.nextNotPing)._tag).toBe("Paired")
      yield* broker.write(Buffer.from("07000000080102030405060708", "hex"))
      yield* broker.write(header(0x03, 0))
      expect((yield* broker.next)._tag).toBe("Closed")
      expect((yield* bridge.next)._tag).toBe("Closed")
      expect(bridge.peerBytes().length).toBe(0)
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("without READY within the hello timeout both are closed without a frame", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ helloTimeoutMs: 300 })
      const bridge = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* bridge.next)._tag).toBe("Waiting")
      const broker = yield* rawHello(beacon, pairing, "broker")
      expect((yield* broker.next)._tag).toBe("Paired")
      expect((yield* bridge.nextNotPing)._tag).toBe("Paired")
      yield* bridge.write(Buffer.from("0500000000", "hex"))
      expect((yield* broker.next)._tag).toBe("Closed")
      expect((yield* bridge.next)._tag).toBe("Closed")
      expect(metrics.refusals).toEqual([])
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("a client that offers another ALPN protocol is refused at the handshake; none at all is fine", () =>
    Effect.gen(function*() {
      const { beacon, metrics } = yield* setup()
      const failure = yield* rawConnect(beacon, { alpn: ["h2"] }).pipe(Effect.flip)
      expect(failure.message).toMatch(/application protocol/i)
      const plain = yield* rawConnect(beacon, { alpn: [] })
      expect((yield* plain.next)._tag).toBe("Challenge")
      plain.socket.destroy()
      yield* goodPairStillPairs(beacon, metrics)
    }))

  it.scopedLive("beyond maxConnections a connection is closed before TLS, and room comes back when one leaves", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ maxConnections: 1 })
      const first = yield* rawHello(beacon, pairing, "bridge")
      expect((yield* first.next)._tag).toBe("Waiting")
      const refused = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker")).pipe(Effect.flip)
      expect(refused._tag).toBe("BeaconConnectionError")
      first.socket.destroy()
      yield* eventually(() => beacon.connections === 0)
      const lone = yield* BeaconClient.connect(clientOptions(beacon, pairing, "broker", { maxWaitMs: 0 })).pipe(
        Effect.flip
      )
      expect(lone._tag === "BeaconRefused" && lone.codeName).toBe("wait_expired")
      expect(metrics.refusals).toEqual(["wait_expired"])
    }))

  it.scopedLive("random bytes in place of frames get an ERROR or a close, and leave nothing behind", () =>
    Effect.gen(function*() {
      const { beacon, metrics, pairing } = yield* setup({ helloTimeoutMs: 300 })
      const types = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0f, 0x10, 0xff]
      for (let i = 0; i < 40; i++) {
        const client = i % 2 === 0 ? yield* rawConnect(beacon) : yield* rawHello(beacon, pairing, "broker")
        expect((yield* client.next)._tag).toBe(i % 2 === 0 ? "Challenge" : "Waiting")
        const body = randomBytes(1 + Math.floor(Math.random() * 3000))
        body[0] = types[i % types.length]!
        if (i % 3 === 0) body.writeUInt32BE(Math.floor(Math.random() * 20000), 1)
        yield* client.write(body)
        let frame = yield* client.nextNotPing
        while (frame._tag === "Waiting" || frame._tag === "Challenge") frame = yield* client.nextNotPing
        expect(["Error", "Closed"]).toContain(frame._tag)
        client.socket.destroy()
      }
      yield* goodPairStillPairs(beacon, metrics)
      expect(metrics.waiting).toEqual({ bridge: 0, broker: 0 })
    }))
})
