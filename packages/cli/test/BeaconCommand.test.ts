import * as BeaconClient from "@cloudtaser/beacon/BeaconClient"
import { makeCa, makeLeaf, makeServerCertificate } from "@cloudtaser/pki/Certificates"
import { infoHash } from "@cloudtaser/pki/InfoHash"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Schedule } from "effect"
import type { ChildProcess } from "node:child_process"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Tls from "node:tls"
import { fileURLToPath } from "node:url"

const beaconBin = fileURLToPath(new URL("../bin/cloudtaser-beacon.js", import.meta.url))
const cloudtaserBin = fileURLToPath(new URL("../bin/cloudtaser.js", import.meta.url))

/** Environment without a collector, so that a developer's own OTEL settings do not leak into the tests. */
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT
  return env
}

interface LogLine {
  readonly message: unknown
  readonly logLevel: string
  readonly annotations: Record<string, unknown>
}

interface Beacon {
  readonly child: ChildProcess
  readonly lines: Array<LogLine>
  /** Resolves with the first log line whose message is `message` and that carries the annotation `key`. */
  readonly line: (message: string, key: string) => Effect.Effect<LogLine>
  readonly exit: Effect.Effect<number | null>
}

/**
 * Starts `cloudtaser-beacon` with `args` (or, with `command`, `cloudtaser <command> ...args`); the scope kills it if
 * the test has not stopped it.
 */
const startBeacon = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}, command?: string) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const entry = command === undefined ? [beaconBin] : [cloudtaserBin, command]
      const child = spawn(process.execPath, [...entry, ...args], {
        env: { ...cleanEnv(), ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<LogLine> = []
      const waiters: Array<{ match: (line: LogLine) => boolean; deferred: Deferred.Deferred<LogLine> }> = []
      const exited = yield* Deferred.make<number | null>()
      let buffered = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        buffered += chunk
        let newline = buffered.indexOf("\n")
        while (newline >= 0) {
          const line = JSON.parse(buffered.slice(0, newline)) as LogLine
          buffered = buffered.slice(newline + 1)
          lines.push(line)
          for (const waiter of waiters) {
            if (waiter.match(line)) Deferred.unsafeDone(waiter.deferred, Effect.succeed(line))
          }
          newline = buffered.indexOf("\n")
        }
      })
      let stderr = ""
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
      child.on("exit", (code) => {
        if (code !== 0 && stderr !== "") process.stderr.write(stderr)
        Deferred.unsafeDone(exited, Effect.succeed(code))
      })
      const line = (message: string, key: string) =>
        Effect.suspend(() => {
          const match = (candidate: LogLine) => candidate.message === message && key in candidate.annotations
          const seen = lines.find(match)
          if (seen !== undefined) return Effect.succeed(seen)
          return Effect.flatMap(Deferred.make<LogLine>(), (deferred) => {
            waiters.push({ match, deferred })
            return Effect.raceFirst(
              Deferred.await(deferred),
              Effect.flatMap(
                Deferred.await(exited),
                (code) => Effect.dieMessage(`cloudtaser-beacon exited with ${code} before logging "${message}"`)
              )
            )
          })
        })
      return { child, lines, line, exit: Deferred.await(exited) } satisfies Beacon
    }),
    ({ child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

const portOf = (address: unknown): number => Number(String(address).split(":").at(-1))

/** Connects like a client does and resolves with the socket and the first bytes the beacon sends. */
const connectTls = (port: number, expectedBytes: number) =>
  Effect.acquireRelease(
    Effect.async<{ socket: Tls.TLSSocket; first: Buffer }, Error>((resume) => {
      const socket = Tls.connect({
        host: "127.0.0.1",
        port,
        ALPNProtocols: ["cloudtaser-beacon/1"],
        rejectUnauthorized: false
      })
      let received = Buffer.alloc(0)
      const onData = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk])
        if (received.length >= expectedBytes) {
          socket.off("data", onData)
          socket.pause()
          resume(Effect.succeed({ socket, first: received }))
        }
      }
      socket.on("data", onData)
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/**
 * Connects to the beacon, answers its CHALLENGE with a frame out of order, and counts the TLS session tickets that
 * arrived by the time the beacon has refused it: a server sends its tickets before any later record, so every ticket
 * of the connection is counted by then.
 */
const ticketsOfOneConnection = (port: number) =>
  Effect.async<number, Error>((resume) => {
    const socket = Tls.connect({
      host: "127.0.0.1",
      port,
      ALPNProtocols: ["cloudtaser-beacon/1"],
      rejectUnauthorized: false
    })
    let tickets = 0
    socket.on("session", () => tickets++)
    socket.once("data", () => socket.write(Buffer.from([0x05, 0, 0, 0, 0])))
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("end", () => {
      socket.destroy()
      resume(Effect.succeed(tickets))
    })
  })

/** The command line of a running process, as the kernel has it. */
const commandLine = (pid: number): ReadonlyArray<string> =>
  readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((arg) => arg !== "")

const selfSigned = ["--addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0", "--self-signed"]

/** Resolves with every byte the beacon sends until it closes the connection. */
const readUntilClosed = (socket: Tls.TLSSocket) =>
  Effect.async<Buffer>((resume) => {
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", () => {})
    socket.on("close", () => resume(Effect.succeed(Buffer.concat(chunks))))
    socket.resume()
  })

const httpGet = (port: number, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: response.status, body: await response.text() }
  })

/** A temporary directory for certificate files, removed with the scope. */
const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "cloudtaser-beacon-test-"))),
  (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
)

/** A local OTLP/HTTP collector that keeps the body of every request it receives. */
const collector = Effect.acquireRelease(
  Effect.async<{ readonly server: Http.Server; readonly bodies: Array<string> }>((resume) => {
    const bodies: Array<string> = []
    const server = Http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        bodies.push(Buffer.concat(chunks).toString("utf8"))
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, bodies })))
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** Pairs a bridge and a broker through the beacon on `port`, as the real clients do. */
const pair = (port: number) =>
  Effect.gen(function*() {
    const ca = yield* makeCa({ commonName: "drain test pairing CA" })
    const bridgeLeaf = yield* makeLeaf({ ca, role: "bridge", commonName: "drain test bridge" })
    const brokerLeaf = yield* makeLeaf({ ca, role: "broker", commonName: "drain test broker" })
    const common = {
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      caDer: ca.certDer,
      infoHash: infoHash(ca.certDer),
      maxWaitMs: 60_000
    }
    const bridgeWaiting = yield* Deferred.make<void>()
    const bridge = yield* Effect.fork(BeaconClient.connect({
      ...common,
      role: "bridge",
      leafDer: bridgeLeaf.certDer,
      leafKey: bridgeLeaf.keyPem,
      onWaiting: () => Deferred.unsafeDone(bridgeWaiting, Effect.void)
    }))
    yield* Deferred.await(bridgeWaiting)
    const broker = yield* BeaconClient.connect({
      ...common,
      role: "broker",
      leafDer: brokerLeaf.certDer,
      leafKey: brokerLeaf.keyPem
    })
    return { bridge: (yield* Fiber.join(bridge)).socket, broker: broker.socket }
  })

/** Resolves with the first `length` bytes that arrive on `socket`. */
const receive = (socket: Tls.TLSSocket, length: number) =>
  Effect.async<Buffer>((resume) => {
    let received = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length >= length) {
        socket.off("data", onData)
        resume(Effect.succeed(received))
      }
    }
    socket.on("data", onData)
    socket.resume()
  })

/** Resolves once the beacon has ended or dropped the connection (the client's sockets allow half-open use). */
const endedByBeacon = (socket: Tls.TLSSocket) =>
  Effect.async<void>((resume) => {
    if (socket.readableEnded || socket.destroyed) return resume(Effect.void)
    socket.on("error", () => {})
    socket.once("end", () => resume(Effect.void))
    socket.once("close", () => resume(Effect.void))
    socket.resume()
  })

describe("cloudtaser-beacon", () => {
  it.scopedLive("listens, sends a CHALLENGE, reports ready, and drains to exit code 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon(selfSigned)

      const listening = yield* beacon.line("beacon listening", "opsAddr")
      expect(listening.logLevel).toBe("INFO")
      expect(listening.annotations.component).toBe("beacon")
      const port = portOf(listening.annotations.addr)
      const opsPort = portOf(listening.annotations.opsAddr)
      expect(port).toBeGreaterThan(0)
      expect(opsPort).toBeGreaterThan(0)
      expect(String(listening.annotations.addr)).toBe(`127.0.0.1:${port}`)

      const { first, socket } = yield* connectTls(port, 38)
      expect(socket.alpnProtocol).toBe("cloudtaser-beacon/1")
      expect(first[0]).toBe(0x01)
      expect(first.readUInt32BE(1)).toBe(33)
      expect(first[5]).toBe(1)
      // The fingerprint the beacon logged is the one of the certificate it presents.
      const warning = beacon.lines.find((line) => line.annotations.fingerprintSha256 !== undefined)
      expect(warning?.annotations.fingerprintSha256).toBe(socket.getPeerCertificate().fingerprint256)

      expect((yield* httpGet(opsPort, "/healthz")).status).toBe(200)
      expect((yield* httpGet(opsPort, "/readyz")).status).toBe(200)
      const metrics = yield* httpGet(opsPort, "/metrics")
      expect(metrics.body).toMatch(/^cloudtaser_beacon_connections_open 1$/m)

      const closing = yield* Effect.fork(readUntilClosed(socket))
      beacon.child.kill("SIGTERM")
      expect(yield* beacon.exit).toBe(0)
      // A client still in its HELLO phase is told the beacon is going away.
      const farewell = (yield* closing).subarray(0)
      expect(farewell[0]).toBe(0x0f)
      expect(farewell.readUInt16BE(5)).toBe(9)
      const messages = beacon.lines.map((line) => line.message)
      expect(messages).toContain("beacon draining")
      expect(messages.at(-1)).toBe("beacon stopped")
    }))

  it.scopedLive("on SIGTERM: /readyz 503, a paired session relays until it ends, its span is flushed, exit 0", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const beacon = yield* startBeacon([
        "--addr",
        "127.0.0.1:0",
        "--ops-addr",
        "127.0.0.1:0",
        "--self-signed",
        "--drain-timeout",
        "10m",
        "--otlp-endpoint",
        `http://127.0.0.1:${(otlp.server.address() as AddressInfo).port}`
      ])
      const listening = yield* beacon.line("beacon listening", "opsAddr")
      const opsPort = portOf(listening.annotations.opsAddr)
      const { bridge, broker } = yield* pair(portOf(listening.annotations.addr))

      beacon.child.kill("SIGTERM")
      const readiness = yield* httpGet(opsPort, "/readyz").pipe(
        Effect.filterOrFail((response) => response.status !== 200),
        Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 500 })
      )
      expect(readiness.status).toBe(503)
      expect((yield* httpGet(opsPort, "/healthz")).status).toBe(200)

      bridge.write("still relaying while draining")
      expect((yield* receive(broker, 29)).toString()).toBe("still relaying while draining")
      expect(beacon.child.exitCode).toBe(null)

      bridge.end()
      broker.end()
      expect(yield* beacon.exit).toBe(0)
      expect(beacon.lines.at(-1)?.message).toBe("beacon stopped")
      // Spans are sent in batches; the session's span reaches the collector because the exit flushes the batch.
      expect(otlp.bodies.join("\n")).toContain("\"beacon.session\"")
    }))

  it.scopedLive("closes a paired session that outlives --drain-timeout and exits 0", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon([
        "--addr",
        "127.0.0.1:0",
        "--ops-addr",
        "127.0.0.1:0",
        "--self-signed",
        "--drain-timeout",
        "200ms"
      ])
      const listening = yield* beacon.line("beacon listening", "opsAddr")
      const { bridge, broker } = yield* pair(portOf(listening.annotations.addr))

      beacon.child.kill("SIGTERM")
      yield* endedByBeacon(broker)
      yield* endedByBeacon(bridge)
      expect(yield* beacon.exit).toBe(0)
    }))

  it.scopedLive("serves the certificate given with --tls-cert and --tls-key", () =>
    Effect.gen(function*() {
      const issued = yield* makeServerCertificate({
        commonName: "beacon.example.com",
        dnsNames: ["beacon.example.com"]
      })
      const directory = yield* tempDirectory
      writeFileSync(join(directory, "tls.crt"), issued.certPem)
      writeFileSync(join(directory, "tls.key"), issued.keyPem)
      const beacon = yield* startBeacon([
        "--addr",
        "127.0.0.1:0",
        "--ops-addr",
        "127.0.0.1:0",
        "--tls-cert",
        join(directory, "tls.crt"),
        "--tls-key",
        join(directory, "tls.key")
      ])
      const listening = yield* beacon.line("beacon listening", "opsAddr")
      const { socket } = yield* connectTls(portOf(listening.annotations.addr), 38)
      expect(socket.getPeerCertificate().fingerprint256).toBe(issued.fingerprint256)
      beacon.child.kill("SIGTERM")
      expect(yield* beacon.exit).toBe(0)
    }))

  it.scoped("refuses a key that does not belong to the certificate before it listens", () =>
    Effect.gen(function*() {
      const first = yield* makeServerCertificate({ commonName: "beacon.example.com" })
      const second = yield* makeServerCertificate({ commonName: "beacon.example.com" })
      const directory = yield* tempDirectory
      writeFileSync(join(directory, "tls.crt"), first.certPem)
      writeFileSync(join(directory, "tls.key"), second.keyPem)
      const result = spawnSync(
        process.execPath,
        [beaconBin, "--tls-cert", join(directory, "tls.crt"), "--tls-key", join(directory, "tls.key")],
        { encoding: "utf8", env: cleanEnv() }
      )
      expect(result.status).not.toBe(0)
      expect(result.stderr).toContain("does not belong to the certificate")
      expect(result.stdout).not.toContain("beacon listening")
    }))

  it.scopedLive("sends its spans to OTEL_EXPORTER_OTLP_ENDPOINT when no flag names a collector", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const beacon = yield* startBeacon(selfSigned, {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(otlp.server.address() as AddressInfo).port}`
      })
      yield* beacon.line("beacon listening", "opsAddr")
      beacon.child.kill("SIGTERM")
      expect(yield* beacon.exit).toBe(0)
      expect(otlp.bodies.join("\n")).toContain("\"OpsServer.make\"")
    }))

  it("without a certificate explains how to get one and exits non-zero", () => {
    const result = spawnSync(process.execPath, [beaconBin, "--addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0"], {
      encoding: "utf8",
      env: cleanEnv()
    })
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain("needs a TLS certificate")
    expect(result.stderr).toContain("--tls-cert")
    expect(result.stderr).toContain("Let's Encrypt")
    expect(result.stderr).toContain("--self-signed")
  })

  it("refuses a certificate file that does not exist, naming it", () => {
    const result = spawnSync(
      process.execPath,
      [
        beaconBin,
        "--addr",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/beacon.pem",
        "--tls-key",
        "/nonexistent/key.pem"
      ],
      { encoding: "utf8", env: cleanEnv() }
    )
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain("/nonexistent/beacon.pem")
  })

  it("reports a malformed flag value once, with what was expected", () => {
    const result = spawnSync(process.execPath, [beaconBin, "--self-signed", "--hello-timeout", "soon"], {
      encoding: "utf8",
      env: cleanEnv()
    })
    expect(result.status).not.toBe(0)
    const output = result.stdout + result.stderr
    expect(output).toContain("expected a duration such as")
    expect(output.split("--hello-timeout soon").length - 1).toBe(1)

    const zero = spawnSync(process.execPath, [beaconBin, "--self-signed", "--ping-interval", "0s"], {
      encoding: "utf8",
      env: cleanEnv()
    })
    expect(zero.status).not.toBe(0)
    expect(zero.stdout + zero.stderr).toContain("--ping-interval 0s: must be longer than zero")
  })

  it("--help lists every flag with its default", () => {
    const result = spawnSync(process.execPath, [beaconBin, "--help"], { encoding: "utf8", env: cleanEnv() })
    expect(result.status).toBe(0)
    for (
      const flag of [
        "--addr",
        "--tls-cert",
        "--tls-key",
        "--self-signed",
        "--hello-timeout",
        "--max-wait",
        "--ping-interval",
        "--max-waiting-per-hash",
        "--max-waiting-per-source",
        "--max-waiting",
        "--max-connections",
        "--drain-timeout",
        "--ops-addr",
        "--otlp-endpoint"
      ]
    ) {
      expect(result.stdout).toContain(flag)
    }
    expect(result.stdout).toContain("Default: :443.")
    expect(result.stdout).toContain("Default: :9090.")
    expect(result.stdout).toContain("Default: 10s.")
    expect(result.stdout).toContain("OTEL_EXPORTER_OTLP_ENDPOINT")
  })

  it("is the same command as `cloudtaser beacon`", () => {
    const result = spawnSync(process.execPath, [cloudtaserBin, "beacon", "--help"], {
      encoding: "utf8",
      env: cleanEnv()
    })
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("--max-waiting-per-source")
    expect(result.stdout).toContain("--drain-timeout")
  })
})

describe("the beacon process", () => {
  // A client of the beacon never resumes a session, so tickets would be wasted work and bytes on every connection.
  it.scopedLive("sends no TLS session tickets, started as cloudtaser-beacon or as cloudtaser beacon", () =>
    Effect.gen(function*() {
      for (const command of [undefined, "beacon"]) {
        const beacon = yield* startBeacon(selfSigned, {}, command)
        const listening = yield* beacon.line("beacon listening", "addr")
        expect(yield* ticketsOfOneConnection(portOf(listening.annotations.addr))).toBe(0)
      }
    }))

  it.scopedLive("keeps the OpenSSL configuration the user chose, which here leaves Node's two tickets", () =>
    Effect.gen(function*() {
      const beacon = yield* startBeacon(selfSigned, { OPENSSL_CONF: "/dev/null" })
      const listening = yield* beacon.line("beacon listening", "addr")
      expect(yield* ticketsOfOneConnection(portOf(listening.annotations.addr))).toBe(2)
    }))

  it.scopedLive("runs in the process it was started as, with small semi-spaces unless the user set their size", () =>
    Effect.gen(function*() {
      const tuned = yield* startBeacon(selfSigned)
      yield* tuned.line("beacon listening", "addr")
      expect(commandLine(tuned.child.pid!)).toEqual(expect.arrayContaining([
        "--max-semi-space-size=2",
        "--initial-heap-size=128",
        "--external-memory-accounted-in-global-limit"
      ]))

      const chosen = yield* startBeacon(selfSigned, { NODE_OPTIONS: "--max-semi-space-size=8" })
      yield* chosen.line("beacon listening", "addr")
      expect(commandLine(chosen.child.pid!).some((arg) => arg.startsWith("--max-semi-space-size"))).toBe(false)
      expect(commandLine(chosen.child.pid!).some((arg) => arg.startsWith("--openssl-config="))).toBe(true)
    }))
})
