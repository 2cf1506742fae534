/**
 * What the Vault client tests share: a tracer that keeps every span, a check that a secret string appears in no span
 * and no error, and a plain HTTP server on 127.0.0.1 for the answers the Vault dev server cannot give.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** Everything a span recorded, as text that can be searched. */
export interface RecordedSpan {
  readonly name: string
  readonly attributes: ReadonlyMap<string, unknown>
  readonly text: string
}

/** Runs the effect with a tracer that records every span it starts, and returns its exit and the spans. */
export const withRecordedSpans = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<{ readonly exit: Exit.Exit<A, E>; readonly spans: () => ReadonlyArray<RecordedSpan> }, never, R> =>
  Effect.gen(function*() {
    const base = yield* Effect.tracer
    const started: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (name, parent, context, links, startTime, kind, options) => {
        const span = base.span(name, parent, context, links, startTime, kind, options)
        started.push(span)
        return span
      },
      context: (f, fiber) => base.context(f, fiber)
    })
    const exit = yield* Effect.exit(Effect.withTracer(effect, tracer))
    return { exit, spans: () => started.map(record) }
  })

const record = (span: Tracer.Span): RecordedSpan => {
  const events = (span as unknown as { readonly events?: unknown }).events ?? []
  const ended = span.status._tag === "Ended" && Exit.isFailure(span.status.exit)
    ? Cause.pretty(span.status.exit.cause, { renderErrorCause: true })
    : ""
  const attributes = Array.from(span.attributes, ([key, value]) => [key, String(value)])
  return {
    name: span.name,
    attributes: span.attributes,
    text: JSON.stringify({ name: span.name, attributes, events: String(JSON.stringify(events)), ended })
  }
}

/** All the ways an error can be shown: its message, its string form, its JSON and its pretty cause. */
export const renderings = (error: unknown): ReadonlyArray<string> => [
  error instanceof Error ? error.message : "",
  String(error),
  JSON.stringify(error),
  Cause.pretty(Cause.fail(error), { renderErrorCause: true })
]

/** What a test server answers: a status and a JSON body, or nothing at all to leave the request hanging. */
export type Answer = { readonly status: number; readonly body?: unknown } | "hang"

/** A request as the test server saw it. */
export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/**
 * Starts a plain HTTP server on 127.0.0.1 port 0 that records each request and answers it with `answer`. It closes
 * with the scope.
 */
export const testServer = (
  answer: (request: SeenRequest, index: number) => Answer
): Effect.Effect<{ readonly url: string; readonly seen: ReadonlyArray<SeenRequest> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const seen: Array<SeenRequest> = []
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer((request, response) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            const seenRequest: SeenRequest = {
              method: request.method ?? "",
              url: request.url ?? "",
              headers: request.headers,
              body: Buffer.concat(chunks).toString("utf8")
            }
            seen.push(seenRequest)
            const reply = answer(seenRequest, seen.length - 1)
            if (reply === "hang") return
            response.writeHead(reply.status, { "content-type": "application/json" })
            response.end(reply.body === undefined ? "" : JSON.stringify(reply.body))
          })
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo
    return { url: `http://127.0.0.1:${port}`, seen }
  })

/** A port on 127.0.0.1 that was just bound and released, so nothing listens on it. */
export const closedPort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})
