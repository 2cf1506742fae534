import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import type { AddressInfo } from "node:net"
import * as tls from "node:tls"
import { makeCa, makeLeaf, makeServerCertificate } from "../src/Certificates.ts"

/** A TLS server on 127.0.0.1 port 0 that greets each client it accepts by name and signals a refused client. */
const serve = (options: tls.TlsOptions) =>
  Effect.gen(function*() {
    const rejected = yield* Deferred.make<string>()
    const greeted: Array<string> = []
    const server = yield* Effect.acquireRelease(
      Effect.async<tls.Server>((resume) => {
        const server = tls.createServer(options, (socket) => {
          const peer = socket.getPeerCertificate()
          const name = String(peer.subject?.CN ?? "anonymous")
          greeted.push(name)
          socket.end(`hello ${name}`)
        })
        server.on("tlsClientError", (error) => Deferred.unsafeDone(rejected, Effect.succeed(error.message)))
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
    )
    return { port: (server.address() as AddressInfo).port, rejected, greeted }
  })

type Outcome = { readonly _tag: "Greeted"; readonly text: string } | { readonly _tag: "Failed"; readonly error: string }

/** Connects, reads until the server ends the stream, and reports what was said or why it failed. */
const talk = (options: tls.ConnectionOptions) =>
  Effect.async<Outcome>((resume) => {
    let text = ""
    const socket = tls.connect({ host: "127.0.0.1", ...options })
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => (text += chunk))
    socket.on("end", () =>
      resume(Effect.succeed(text === "" ? { _tag: "Failed", error: "closed" } : { _tag: "Greeted", text })))
    socket.on("error", (error) =>
      resume(Effect.succeed({ _tag: "Failed", error: error.message })))
    return Effect.sync(() => socket.destroy())
  })

describe("generated certificates as Node TLS credentials", () => {
  it.scoped("let a broker leaf authenticate to a bridge leaf in mutual TLS, and refuse a leaf of another CA", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const other = yield* makeCa({ commonName: "pairing ca" })
      const bridge = yield* makeLeaf({ ca, role: "bridge", commonName: "bridge", dnsNames: ["cloudtaser-bridge"] })
      const broker = yield* makeLeaf({ ca, role: "broker", commonName: "broker" })
      const stranger = yield* makeLeaf({ ca: other, role: "broker", commonName: "stranger" })
      const { greeted, port, rejected } = yield* serve({
        cert: bridge.certPem,
        key: bridge.keyPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3"
      })
      const client = { port, ca: ca.certPem, servername: "cloudtaser-bridge" }

      expect(yield* talk({ ...client, cert: broker.certPem, key: broker.keyPem })).toEqual({
        _tag: "Greeted",
        text: "hello broker"
      })
      const refused = yield* talk({ ...client, cert: stranger.certPem, key: stranger.keyPem })
      expect(refused._tag).toBe("Failed")
      yield* Deferred.await(rejected)
      expect(greeted).toEqual(["broker"])
    }))

  it.scoped("refuse a broker leaf offered as the server, since its key usage is clientAuth only", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "pairing ca" })
      const broker = yield* makeLeaf({ ca, role: "broker", commonName: "broker", dnsNames: ["cloudtaser-bridge"] })
      const { port } = yield* serve({ cert: broker.certPem, key: broker.keyPem })
      const outcome = yield* talk({ port, ca: ca.certPem, servername: "cloudtaser-bridge" })
      expect(outcome._tag === "Failed" && outcome.error).toContain("unsuitable certificate purpose")
    }))

  it.scoped("serve HTTPS with a self-signed server certificate that a client trusts by its PEM alone", () =>
    Effect.gen(function*() {
      const server = yield* makeServerCertificate({
        commonName: "localhost",
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"]
      })
      const { port } = yield* serve({ cert: server.certPem, key: server.keyPem })
      expect(yield* talk({ port, ca: server.certPem })).toEqual({ _tag: "Greeted", text: "hello anonymous" })
      expect(yield* talk({ port, ca: server.certPem, servername: "localhost" })).toEqual({
        _tag: "Greeted",
        text: "hello anonymous"
      })
      const untrusted = yield* talk({ port })
      expect(untrusted._tag === "Failed" && untrusted.error).toContain("self-signed certificate")
      expect((yield* talk({ port, ca: server.certPem, servername: "example.com" }))._tag).toBe("Failed")
    }))

  it.scoped("serve HTTPS with a server leaf issued by a CA, trusted through the CA bundle", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa({ commonName: "dev ca" })
      const leaf = yield* makeLeaf({ ca, role: "server", commonName: "localhost", ipAddresses: ["127.0.0.1"] })
      const { port } = yield* serve({ cert: leaf.certPem, key: leaf.keyPem })
      expect(yield* talk({ port, ca: ca.certPem })).toEqual({ _tag: "Greeted", text: "hello anonymous" })
    }))
})
