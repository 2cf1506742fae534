/**
 * The beacon's operations endpoint: `/healthz`, `/readyz` and `/metrics` over plain HTTP on a separate address, for
 * probes and Prometheus.
 */
import { HttpMiddleware, HttpRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Schema } from "effect"
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

/**
 * Starts the operations server in the current scope; closing the scope stops it. `GET /healthz` answers 200 while
 * the process runs, `GET /readyz` 200 while `ready` holds and 503 otherwise, `GET /metrics` the Prometheus text of
 * `BeaconMetrics`; anything else is 404.
 */
export const make: (
  options: OpsServerOptions
) => Effect.Effect<OpsServer, OpsListenError, BeaconMetrics | Scope.Scope> = Effect.fn("OpsServer.make")(
  function*(options) {
    const metrics = yield* BeaconMetrics

    const server = yield* NodeHttpServer.make(() => Http.createServer(), { host: options.host, port: options.port })
      .pipe(
        Effect.mapError((error) =>
          new OpsListenError({ host: options.host, port: options.port, detail: describeCause(error.cause) })
        )
      )

    const router = HttpRouter.empty.pipe(
      HttpRouter.get("/healthz", Effect.succeed(HttpServerResponse.text("ok\n"))),
      HttpRouter.get(
        "/readyz",
        Effect.map(options.ready, (ready) =>
          ready
            ? HttpServerResponse.text("ready\n")
            : HttpServerResponse.text("draining\n", { status: 503 }))
      ),
      HttpRouter.get(
        "/metrics",
        Effect.sync(() => HttpServerResponse.text(metrics.render(), { contentType: metricsContentType }))
      )
    )
    // Probes and scrapes every few seconds would drown the relay spans, so the operations server makes none.
    yield* server.serve(router).pipe(HttpMiddleware.withTracerDisabledWhenEffect(() => true))

    const address = server.address._tag === "TcpAddress"
      ? { host: server.address.hostname, port: server.address.port }
      : { host: options.host, port: options.port }
    return { address }
  }
)

const describeCause = (cause: unknown): string =>
  cause instanceof Error ? ("code" in cause && typeof cause.code === "string" ? cause.code : cause.message) : "error"
