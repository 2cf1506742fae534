/**
 * A double of HashiCorp Vault's HTTP API for development and tests: an in-memory server with KV v2, token and
 * Kubernetes auth, ACL policies, seal state and `sys/health`, following Vault's paths, status codes and JSON. It is
 * not Vault and keeps nothing on disk.
 */
import { Clock, Context, Effect, Layer, Schema } from "effect"
import type { Scope } from "effect"
import { listen } from "./internal/devserver/http.ts"
import { DevState } from "./internal/devserver/state.ts"

/** The dev server could not start. */
export class VaultDevServerError extends Schema.TaggedError<VaultDevServerError>()("VaultDevServerError", {
  reason: Schema.Literal("cannot_listen", "bad_tls"),
  address: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "cannot_listen":
        return `the Vault dev server cannot listen on ${this.address} (${this.detail}): stop whatever holds that ` +
          "port or choose another one (port 0 picks a free port)"
      case "bad_tls":
        return `the Vault dev server cannot serve HTTPS with the certificate and key it was given (${this.detail}): ` +
          "pass a PEM certificate and the PEM private key that belongs to it"
    }
  }
}

/** How to start a dev server. */
export interface VaultDevServerOptions {
  /** Address to listen on; `127.0.0.1` unless told otherwise. */
  readonly host?: string
  /** Port to listen on; 0 (the default) picks a free one. */
  readonly port?: number
  /** The root token, as `vault server -dev -dev-root-token-id` takes it. */
  readonly rootToken: string
  /** Serve HTTPS with this certificate and key instead of plain HTTP. */
  readonly tls?: { readonly certPem: string; readonly keyPem: string }
  /** Report as a standby node in `sys/health` (default false). */
  readonly standby?: boolean
  /** Report as a performance standby node in `sys/health` (default false). */
  readonly performanceStandby?: boolean
  /** Start uninitialized: every request but `sys/health` and friends is refused (default false). */
  readonly uninitialized?: boolean
  /**
   * How many requests a KV v2 mount enabled through `sys/mounts` answers with Vault's "upgrading" error before it
   * serves, so that a client's retry can be tested (default 0).
   */
  readonly kvUpgradeRequests?: number
}

/** A running dev server. */
export interface VaultDevServerHandle {
  /** Base URL, such as `http://127.0.0.1:43127`; Vault's API is under `/v1/`. */
  readonly url: string
  readonly rootToken: string
  /** The key `sys/unseal` accepts after a seal. */
  readonly unsealKey: string
  /** Seals the server: from now on it answers 503 "Vault is sealed" to all but the status endpoints. */
  readonly seal: () => Effect.Effect<void>
  /** Unseals the server again. */
  readonly unseal: () => Effect.Effect<void>
}

/**
 * Starts a dev server in the current scope; closing the scope stops it. Requests see the `Clock` of the calling
 * fiber, so token expiry follows `TestClock` in tests.
 */
export const start: (
  options: VaultDevServerOptions
) => Effect.Effect<VaultDevServerHandle, VaultDevServerError, Scope.Scope> = Effect.fn("VaultDevServer.start")(
  function*(options: VaultDevServerOptions) {
    const runtime = yield* Effect.runtime<never>()
    const now = yield* Clock.currentTimeMillis
    const state = new DevState({
      rootToken: options.rootToken,
      health: {
        initialized: !(options.uninitialized ?? false),
        standby: options.standby ?? false,
        performanceStandby: options.performanceStandby ?? false
      },
      kvUpgradeRequests: options.kvUpgradeRequests ?? 0,
      now
    })
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    const address = `${host.includes(":") ? `[${host}]` : host}:${port}`
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => listen({ state, runtime, host, port, tls: options.tls }),
        catch: (cause) => {
          const error = cause as NodeJS.ErrnoException
          const detail = error.code ?? error.message ?? String(cause)
          return new VaultDevServerError({
            // Socket errors have short errno codes (EADDRINUSE); certificate and key errors come from OpenSSL.
            reason: error.code !== undefined && /^E[A-Z]+$/.test(error.code) ? "cannot_listen" : "bad_tls",
            address,
            detail
          })
        }
      }),
      (server) => Effect.promise(() => server.close())
    )
    const scheme = options.tls === undefined ? "http" : "https"
    const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${server.port}`
    yield* Effect.logDebug("Vault dev server double listening").pipe(Effect.annotateLogs({ url }))
    return {
      url,
      rootToken: options.rootToken,
      unsealKey: state.unsealKey,
      seal: () => Effect.sync(() => void (state.sealed = true)),
      unseal: () => Effect.sync(() => void (state.sealed = false))
    }
  }
)

/** A running dev server as a service, for `it.layer` and for programs that start one. */
export class VaultDevServer extends Context.Tag("@cloudtaser/vault/VaultDevServer")<
  VaultDevServer,
  VaultDevServerHandle
>() {
  /** Starts a dev server for the lifetime of the layer. */
  static readonly layer = (options: VaultDevServerOptions): Layer.Layer<VaultDevServer, VaultDevServerError> =>
    Layer.scoped(VaultDevServer, start(options))

  /** Same as the module's `start`. */
  static readonly start = start
}

/** Starts a dev server for the lifetime of the layer. */
export const layer = VaultDevServer.layer
