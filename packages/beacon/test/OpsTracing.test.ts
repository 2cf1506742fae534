import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Tracing from "../src/Tracing.ts"

interface Received {
  readonly path: string
  readonly contentType: string | undefined
  readonly body: string
}

/** A local OTLP/HTTP receiver that records every request it gets and answers as a collector does. */
const receiver = Effect.acquireRelease(
  Effect.async<{ readonly server: Http.Server; readonly requests: Array<Received> }>((resume) => {
    const requests: Array<Received> = []
    const server = Http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        requests.push({
          path: request.url ?? "",
          contentType: request.headers["content-type"],
          body: Buffer.concat(chunks).toString("utf8")
        })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, requests })))
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

const portOf = (server: Http.Server) => (server.address() as AddressInfo).port

describe("Tracing", () => {
  it.scoped("exports spans to the configured OTLP/HTTP endpoint by the time the layer is released", () =>
    Effect.gen(function*() {
      const { requests, server } = yield* receiver

      yield* Effect.void.pipe(
        Effect.withSpan("beacon.session", { attributes: { "cloudtaser.role": "bridge" } }),
        Effect.provide(Tracing.layer({ endpoint: `http://127.0.0.1:${portOf(server)}` }))
      )

      const traces = requests.filter((request) => request.path === "/v1/traces")
      expect(traces.length).toBeGreaterThan(0)
      expect(traces[0].contentType).toBe("application/json")
      const exported = traces.map((request) => JSON.parse(request.body))
      const spans = exported.flatMap((body) =>
        body.resourceSpans.flatMap((resourceSpans: { scopeSpans: Array<{ spans: Array<{ name: string }> }> }) =>
          resourceSpans.scopeSpans.flatMap((scope) => scope.spans)
        )
      )
      expect(spans.map((span: { name: string }) => span.name)).toContain("beacon.session")
      expect(JSON.stringify(exported[0].resourceSpans[0].resource.attributes)).toContain("cloudtaser-beacon")
    }))

  it.effect("without an endpoint installs nothing and keeps Effect's own tracer", () =>
    Effect.gen(function*() {
      const before = yield* Effect.tracer
      const during = yield* Effect.tracer.pipe(Effect.provide(Tracing.layer({ endpoint: undefined })))
      expect(during).toBe(before)
    }))

  it("posts to /v1/traces under a base endpoint and keeps a full traces URL as it is", () => {
    expect(Tracing.tracesUrl("http://collector:4318")).toBe("http://collector:4318/v1/traces")
    expect(Tracing.tracesUrl("http://collector:4318/")).toBe("http://collector:4318/v1/traces")
    expect(Tracing.tracesUrl("https://otel.example/v1/traces")).toBe("https://otel.example/v1/traces")
  })
})
