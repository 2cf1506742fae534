/**
 * `npm run demo`: a beacon on 127.0.0.1 pairs a bridge-role client and a broker-role client, each side sends the
 * other a message through it, and the demo prints what happened, including the beacon's span for the relay session.
 * It exits 0 only if both messages arrived intact.
 */
import * as BeaconClient from "@cloudtaser/beacon/BeaconClient"
import { BeaconMetrics } from "@cloudtaser/beacon/BeaconMetrics"
import * as BeaconServer from "@cloudtaser/beacon/BeaconServer"
import { makeCa, makeLeaf, makeServerCertificate } from "@cloudtaser/pki/Certificates"
import { infoHash, shortInfoHash } from "@cloudtaser/pki/InfoHash"
import { NodeSdk } from "@effect/opentelemetry"
import { NodeRuntime } from "@effect/platform-node"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Data, Deferred, Effect, Fiber, Layer, Schedule } from "effect"
import type * as tls from "node:tls"

class DemoFailed extends Data.TaggedError("DemoFailed")<{ readonly message: string }> {}

const say = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))
const step = (line: string) => say(`\n▸ ${line}`)

/** Reads until `expected.length` bytes have arrived, then compares them with what was sent. */
const receive = (socket: tls.TLSSocket, expected: string) =>
  Effect.async<string, DemoFailed>((resume) => {
    const chunks: Array<Buffer> = []
    let length = 0
    const want = Buffer.byteLength(expected)
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= want) finish()
    }
    const onEnd = () => finish()
    const finish = () => {
      socket.off("data", onData).off("end", onEnd)
      socket.pause()
      const text = Buffer.concat(chunks).toString("utf8")
      resume(
        text === expected
          ? Effect.succeed(text)
          : Effect.fail(
            new DemoFailed({ message: `expected ${JSON.stringify(expected)}, got ${JSON.stringify(text)}` })
          )
      )
    }
    socket.on("data", onData).on("end", onEnd)
    socket.resume()
    return Effect.sync(() => socket.off("data", onData).off("end", onEnd))
  }).pipe(
    Effect.timeoutFail({
      duration: "10 seconds",
      onTimeout: () =>
        new DemoFailed({ message: `no message within 10 seconds (waiting for ${expected.length} bytes)` })
    })
  )

const send = (socket: tls.TLSSocket, text: string) =>
  Effect.async<void, DemoFailed>((resume) => {
    socket.write(text, (error) =>
      resume(error ? Effect.fail(new DemoFailed({ message: `write failed: ${error.message}` })) : Effect.void))
  })

const describeSpan = (span: ReadableSpan): string => {
  const lines = [`span "${span.name}" (trace ${span.spanContext().traceId.slice(0, 8)}…)`]
  for (const [key, value] of Object.entries(span.attributes)) lines.push(`    ${key} = ${String(value)}`)
  return lines.join("\n")
}

const program = (spans: InMemorySpanExporter) =>
  Effect.gen(function*() {
    yield* say("CloudTaser demo: a beacon pairs a bridge and a broker on 127.0.0.1.")

    yield* step("Making the pairing CA, a bridge leaf (serverAuth) and a broker leaf (clientAuth)")
    const ca = yield* makeCa({ commonName: "cloudtaser demo CA" })
    const bridgeLeaf = yield* makeLeaf({ ca, role: "bridge", commonName: "cloudtaser-bridge" })
    const brokerLeaf = yield* makeLeaf({ ca, role: "broker", commonName: "cloudtaser-broker" })
    const hash = infoHash(ca.certDer)
    yield* say(
      `  info hash ${shortInfoHash(hash)}… (SHA-256 of the CA certificate; only its first 12 digits are shown)`
    )

    yield* step("Starting a beacon with a self-signed certificate")
    const beaconCert = yield* makeServerCertificate({
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"]
    })
    const beacon = yield* BeaconServer.make({ host: "127.0.0.1", port: 0, tls: beaconCert })
    const { host, port } = beacon.address
    yield* say(`  listening on ${host}:${port}, certificate SHA-256 ${beaconCert.fingerprint256}`)

    const common = { host, port, servername: "localhost", caPem: beaconCert.certPem, caDer: ca.certDer, infoHash: hash }

    yield* step("The bridge connects first and waits for a broker")
    const bridgeWaiting = yield* Deferred.make<void>()
    const bridgeFiber = yield* BeaconClient.connect({
      ...common,
      role: "bridge",
      leafDer: bridgeLeaf.certDer,
      leafKey: bridgeLeaf.keyPem,
      maxWaitMs: 30_000,
      onWaiting: () => Deferred.unsafeDone(bridgeWaiting, Effect.void)
    }).pipe(Effect.forkScoped)
    yield* Deferred.await(bridgeWaiting)
    yield* say("  beacon answered WAITING: the bridge is queued under its info hash")

    yield* step("The broker connects with the same info hash and is paired at once")
    const broker = yield* BeaconClient.connect({
      ...common,
      role: "broker",
      leafDer: brokerLeaf.certDer,
      leafKey: brokerLeaf.keyPem,
      maxWaitMs: 0,
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    })
    const bridge = yield* Fiber.join(bridgeFiber)
    const sessionId = Buffer.from(broker.sessionId).toString("hex")
    if (sessionId !== Buffer.from(bridge.sessionId).toString("hex")) {
      return yield* new DemoFailed({ message: "the two clients were given different session ids" })
    }
    const waited = (session: BeaconClient.BeaconSession) => session.waited ? "after waiting" : "without waiting"
    yield* say(`  both received PAIRED, session ${sessionId.slice(0, 8)}…`)
    yield* say(`  the bridge was paired ${waited(bridge)}, the broker ${waited(broker)}`)

    yield* step("Each side sends the other a message through the beacon")
    yield* say("  (in the full chain these bytes are the inner mutual-TLS session, opaque to the beacon)")
    const toBridge = "hello bridge, this is the broker"
    const toBroker = "hello broker, this is the bridge"
    yield* send(broker.socket, toBridge)
    yield* say(`  bridge received: ${yield* receive(bridge.socket, toBridge)}`)
    yield* send(bridge.socket, toBroker)
    yield* say(`  broker received: ${yield* receive(broker.socket, toBroker)}`)

    yield* step("Both sides close; the beacon ends the relay session and its span")
    broker.socket.end()
    bridge.socket.end()
    const span = yield* Effect.sync(() => spans.getFinishedSpans().find((s) => s.name === "beacon.session")).pipe(
      Effect.flatMap((found) => found === undefined ? Effect.fail("not yet" as const) : Effect.succeed(found)),
      Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }),
      Effect.mapError(() => new DemoFailed({ message: "the beacon recorded no relay session span" }))
    )
    yield* say(`  ${describeSpan(span)}`)

    yield* step("Both messages arrived intact. Demo finished.")
  }).pipe(Effect.scoped)

const spans = new InMemorySpanExporter()
const Tracing = NodeSdk.layer(() => ({
  resource: { serviceName: "cloudtaser-demo" },
  spanProcessor: new SimpleSpanProcessor(spans)
}))

program(spans).pipe(
  Effect.provide(Layer.merge(Tracing, BeaconMetrics.Noop)),
  Effect.tapError((error) => Effect.sync(() => process.stderr.write(`\ndemo failed: ${error.message}\n`))),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
