/**
 * The beacon's operations endpoint: `/healthz`, `/readyz` and `/metrics` over plain HTTP on a separate address, for
 * probes and Prometheus.
 */
import { Effect, Runtime, Schema } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"
import { BeaconMetrics } from "./BeaconMetrics.ts"

/** Where and what the operations server serves. */
export interface OpsServerOptions {
  /** Interface to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string
  /** TCP port; `0` picks a free one, read it back from `address`. */
  readonly port: number
  /** Whether the beacon accepts new clients; `false` (while draining) turns `/readyz` into 503. */
  readonly ready: Effect.Effect<boolean>
}

/** A running operations server. */
export interface OpsServer {
  /** The address it is bound to, with the actual port. */
  readonly address: { readonly host: string; readonly port: number }
}

/** The operations server could not listen on its address. */
export class OpsListenError extends Schema.TaggedError<OpsListenError>()("OpsListenError", {
  host: Schema.String,
  port: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `the operations server could not listen on ${this.host}:${this.port} (${this.detail}); ` +
      "choose a free address with --ops-addr"
  }
}

/** The Prometheus text exposition content type. */
export const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

const send = (response: Http.ServerResponse, status: number, contentType: string, body: string): void => {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) })
  response.end(body)
}

const textType = "text/plain; charset=utf-8"

/**
 * Starts the operations server in the current scope; closing the scope stops it. `GET /healthz` answers 200 while
 * the process runs, `GET /readyz` 200 while `ready` holds and 503 otherwise, `GET /metrics` the Prometheus text of
 * `BeaconMetrics`; anything else is 404. It is plain `node:http` because it serves three fixed answers, and a
 * framework would cost the beacon more memory than the rest of its operations side together.
 */
export const make: (
  options: OpsServerOptions
) => Effect.Effect<OpsServer, OpsListenError, BeaconMetrics | Scope.Scope> = Effect.fn("OpsServer.make")(
  function*(options) {
    const metrics = yield* BeaconMetrics
    const runtime = yield* Effect.runtime<never>()
    const isReady = Runtime.runPromise(runtime)

    const handle = (request: Http.IncomingMessage, response: Http.ServerResponse): void => {
      const path = (request.url ?? "").split("?", 1)[0]
      if (request.method !== "GET") return send(response, 404, textType, "not found\n")
      switch (path) {
        case "/healthz":
          return send(response, 200, textType, "ok\n")
        case "/readyz":
          isReady(options.ready).then(
            (ready) => ready ? send(response, 200, textType, "ready\n") : send(response, 503, textType, "draining\n"),
            () => send(response, 503, textType, "unknown\n")
          )
          return
        case "/metrics":
          return send(response, 200, metricsContentType, metrics.render())
        default:
          return send(response, 404, textType, "not found\n")
      }
    }

    const server = yield* Effect.acquireRelease(
      Effect.sync(() => Http.createServer(handle)),
      (server) =>
        Effect.async<void>((resume) => {
          if (!server.listening) return resume(Effect.void)
          server.close(() => resume(Effect.void))
          // Probes and scrapes are short; one caught at exit is simply cut off rather than waited for.
          server.closeAllConnections()
        })
    )
    yield* Effect.async<void, OpsListenError>((resume) => {
      const onError = (cause: Error) =>
        resume(
          Effect.fail(new OpsListenError({ host: options.host, port: options.port, detail: describeCause(cause) }))
        )
      server.once("error", onError)
      server.listen(options.port, options.host, () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })
    server.on("error", (cause) =>
      Runtime.runFork(runtime)(
        Effect.logError("operations server failed", cause).pipe(Effect.annotateLogs({ component: "beacon" }))
      ))

    const bound = server.address()
    const address = typeof bound === "object" && bound !== null
      ? { host: bound.address, port: bound.port }
      : { host: options.host, port: options.port }
    return { address }
  }
)

const describeCause = (cause: unknown): string =>
  cause instanceof Error ? ("code" in cause && typeof cause.code === "string" ? cause.code : cause.message) : "error"
