/**
 * Sending one request to Vault's HTTP API and turning every way it can fail into a `VaultError`.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { X509Certificate } from "node:crypto"
import {
  isKvUpgradeMessage,
  VaultBadRequest,
  VaultConfigError,
  type VaultError,
  VaultInvalidPath,
  VaultNotFound,
  VaultPermissionDenied,
  VaultSealed,
  VaultStandby,
  VaultTlsError,
  VaultUnexpectedResponse,
  VaultUnreachable
} from "../VaultError.ts"

/** What a connection to Vault needs, after the configuration has been read and checked. */
export interface Connection {
  readonly http: HttpClient.HttpClient
  /** The origin of Vault with any trailing slash removed, e.g. `https://vault.example:8200`. */
  readonly address: string
  readonly token: Redacted.Redacted<string> | undefined
  readonly namespace: string | undefined
  readonly timeout: Duration.Duration
}

/** How the HTTPS agent talks TLS to Vault. */
export interface TlsOptions {
  readonly caCertPem: string | ReadonlyArray<string> | undefined
  readonly serverName: string | undefined
}

// The hybrid post-quantum group goes first so that recorded traffic stays safe from a future quantum computer;
// the classical groups follow for Vault builds that do not offer it yet.
const keyExchangeGroups = "X25519MLKEM768:X25519:prime256v1:secp384r1"

/** Builds the HTTP client with its own agent, trusting the given CA bundle or, without one, the system roots. */
export const makeHttpClient = (tls: TlsOptions): Effect.Effect<HttpClient.HttpClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const agent = yield* NodeHttpClient.makeAgent({
      keepAlive: true,
      ecdhCurve: keyExchangeGroups,
      ...(tls.caCertPem === undefined
        ? {}
        : { ca: typeof tls.caCertPem === "string" ? tls.caCertPem : [...tls.caCertPem] }),
      ...(tls.serverName === undefined ? {} : { servername: tls.serverName })
    })
    return yield* Effect.provideService(NodeHttpClient.make, NodeHttpClient.HttpAgent, agent)
  })

/**
 * Checks that a CA bundle holds at least one certificate and only parseable ones: Node's TLS silently ignores a
 * bundle it cannot read and then reports an untrusted certificate, which would send the user looking in the wrong
 * place.
 */
export const checkCaBundle = (
  caCertPem: string | ReadonlyArray<string> | undefined
): Effect.Effect<void, VaultConfigError> =>
  Effect.suspend(() => {
    if (caCertPem === undefined) return Effect.void
    const text = typeof caCertPem === "string" ? caCertPem : caCertPem.join("\n")
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
    if (blocks.length === 0) {
      return Effect.fail(
        new VaultConfigError({
          detail: "the CA bundle holds no PEM certificate; give the PEM of the CA that issued Vault's certificate"
        })
      )
    }
    for (const [index, block] of blocks.entries()) {
      try {
        new X509Certificate(block)
      } catch {
        return Effect.fail(
          new VaultConfigError({
            detail: `certificate ${index + 1} of the CA bundle cannot be parsed; check that the bundle is PEM and whole`
          })
        )
      }
    }
    return Effect.void
  })

/** Checks the address is an http(s) URL and returns its origin plus any path prefix, without a trailing slash. */
export const parseAddress = (address: string): Effect.Effect<string, VaultConfigError> =>
  Effect.suspend(() => {
    let url: URL
    try {
      url = new URL(address)
    } catch {
      return Effect.fail(
        new VaultConfigError({ detail: `the Vault address "${address}" is not a URL; set it like https://vault:8200` })
      )
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return Effect.fail(
        new VaultConfigError({ detail: `the Vault address "${address}" must start with https:// or http://` })
      )
    }
    if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
      return Effect.fail(
        new VaultConfigError({
          detail: "the Vault address must not carry credentials, a query or a fragment; give scheme, host and port"
        })
      )
    }
    return Effect.succeed(`${url.origin}${url.pathname.replace(/\/+$/, "")}`)
  })

/** Joins path parts into an API path, encoding each segment; empty segments and stray slashes are dropped. */
export const apiPath = (...parts: ReadonlyArray<string>): string =>
  parts.flatMap((part) => part.split("/")).filter((segment) => segment !== "").join("/")

const encodePath = (path: string): string => path.split("/").map(encodeURIComponent).join("/")

/** One request to Vault's API. */
export interface Call {
  readonly method: "GET" | "POST" | "DELETE"
  /** The API path below `/v1/`, unencoded. */
  readonly path: string
  /** The ACL capability this call needs on the path, named in the error when Vault denies it. */
  readonly capability: string
  readonly query?: Record<string, string> | undefined
  readonly body?: unknown
  /** Whether to send the token; login and health are called without one. */
  readonly authenticated?: boolean | undefined
  /** Whether to send the namespace header; root-only endpoints such as sys/health are called without it. */
  readonly namespaced?: boolean | undefined
}

/** What Vault answered with a 2xx status: the status and the parsed JSON body, `undefined` when it was empty. */
export interface Answer {
  readonly status: number
  readonly body: unknown
}

const ErrorEnvelope = Schema.Struct({ errors: Schema.Array(Schema.String) })
const decodeErrorEnvelope = Schema.decodeUnknownOption(Schema.parseJson(ErrorEnvelope))

/** Sends the call and classifies the outcome; only 2xx answers succeed. */
export const send = (connection: Connection, call: Call): Effect.Effect<Answer, VaultError> =>
  Effect.gen(function*() {
    const { raw, status } = yield* exchange(connection, call)
    if (status >= 200 && status < 300) {
      if (raw.trim() === "") return { status, body: undefined }
      try {
        return { status, body: JSON.parse(raw) as unknown }
      } catch {
        return yield* new VaultUnexpectedResponse({
          ...describe(connection, call),
          status,
          detail: "the body is not JSON"
        })
      }
    }
    return yield* classify(connection, call, status, raw)
  })

/** Sends the call and returns the status and the raw body whatever the status, failing only when nothing came back. */
export const exchange = (
  connection: Connection,
  call: Call
): Effect.Effect<
  { readonly status: number; readonly raw: string },
  VaultUnreachable | VaultTlsError | VaultUnexpectedResponse | VaultInvalidPath
> => {
  if (call.path.split("/").some((segment) => segment === "." || segment === "..")) {
    return Effect.fail(new VaultInvalidPath(describe(connection, call)))
  }
  let request = HttpClientRequest.make(call.method)(`${connection.address}/v1/${encodePath(call.path)}`).pipe(
    HttpClientRequest.acceptJson
  )
  if (call.query !== undefined) request = HttpClientRequest.setUrlParams(request, call.query)
  if (call.body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, call.body)
  if (call.authenticated !== false && connection.token !== undefined) {
    request = HttpClientRequest.setHeader(request, "X-Vault-Token", Redacted.value(connection.token))
  }
  if (call.namespaced !== false && connection.namespace !== undefined) {
    request = HttpClientRequest.setHeader(request, "X-Vault-Namespace", connection.namespace)
  }
  return connection.http.execute(request).pipe(
    Effect.flatMap((response) =>
      Effect.map(readBody(connection, call, response), (raw) => ({ status: response.status, raw }))
    ),
    // The HTTP client records request headers on its span; the token header must show up there only as redacted.
    Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, "x-vault-token"]),
    Effect.timeoutFail({
      duration: connection.timeout,
      onTimeout: () =>
        new VaultUnreachable({
          ...describe(connection, call),
          reason: "Timeout",
          detail: `no answer within ${Duration.format(connection.timeout)}`
        })
    }),
    Effect.catchTag("RequestError", "ResponseError", (error) => Effect.fail(transportError(connection, call, error)))
  )
}

// Vault's answers are small; a peer that streams more than this is not Vault, and is cut off before it fills memory.
const maxBodyBytes = 8 * 1024 * 1024

const readBody = (
  connection: Connection,
  call: Call,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<string, VaultUnexpectedResponse | HttpClientError.ResponseError> =>
  response.stream.pipe(
    Stream.runFoldEffect({ size: 0, chunks: [] as Array<Uint8Array> }, (body, chunk) => {
      if (body.size + chunk.length > maxBodyBytes) {
        return Effect.fail(
          new VaultUnexpectedResponse({
            ...describe(connection, call),
            status: response.status,
            detail: `the body is larger than ${maxBodyBytes / 1024 / 1024} MiB`
          })
        )
      }
      body.chunks.push(chunk)
      return Effect.succeed({ size: body.size + chunk.length, chunks: body.chunks })
    }),
    Effect.map((body) => Buffer.concat(body.chunks).toString("utf8"))
  )

const describe = (connection: Connection, call: Call) => ({
  address: connection.address,
  method: call.method,
  path: call.path
})

const errorsOf = (raw: string): ReadonlyArray<string> => {
  const envelope = decodeErrorEnvelope(raw)
  if (envelope._tag === "Some") return envelope.value.errors
  const text = raw.replace(/\s+/g, " ").trim()
  if (text === "") return []
  return [text.length > 160 ? `${text.slice(0, 160)}…` : text]
}

const classify = (
  connection: Connection,
  call: Call,
  status: number,
  raw: string
): Effect.Effect<never, VaultError> => {
  const request = describe(connection, call)
  const errors = errorsOf(raw)
  switch (status) {
    case 400:
      return Effect.fail(new VaultBadRequest({ ...request, errors }))
    case 403:
      return Effect.fail(
        new VaultPermissionDenied({
          ...request,
          capability: call.capability,
          errors,
          tokenSent: call.authenticated === false || connection.token !== undefined
        })
      )
    case 404:
      return Effect.fail(new VaultNotFound({ ...request, errors }))
    case 307:
      return Effect.fail(new VaultStandby({ ...request, status, errors }))
    case 429:
      return errors.some((error) => /quota|rate limit/i.test(error))
        ? Effect.fail(
          new VaultUnexpectedResponse({
            ...request,
            status,
            detail: `${errors.join("; ")}; a rate limit quota applies to this path, slow down`
          })
        )
        : Effect.fail(new VaultStandby({ ...request, status, errors }))
    case 503:
      return unavailable(connection, call, errors)
  }
  return Effect.fail(
    new VaultUnexpectedResponse({
      ...request,
      status,
      detail: errors.length > 0 ? errors.join("; ") : "no error message"
    })
  )
}

// Vault answers 503 both when sealed and when a standby cannot reach the active node; its message usually says which,
// and when it does not, the unauthenticated health endpoint does.
const unavailable = (
  connection: Connection,
  call: Call,
  errors: ReadonlyArray<string>
): Effect.Effect<never, VaultError> => {
  const request = describe(connection, call)
  if (errors.some((error) => /sealed/i.test(error))) return Effect.fail(new VaultSealed(request))
  if (errors.some((error) => /standby|not active|active node/i.test(error))) {
    return Effect.fail(new VaultStandby({ ...request, status: 503, errors }))
  }
  return exchange(connection, {
    method: "GET",
    path: "sys/health",
    capability: "read",
    authenticated: false,
    namespaced: false
  }).pipe(
    Effect.map(({ raw }) => Schema.decodeUnknownOption(Schema.parseJson(HealthFlags))(raw)),
    Effect.orElseSucceed(() => undefined),
    Effect.flatMap((health): Effect.Effect<never, VaultError> => {
      if (health?._tag === "Some" && health.value.sealed) return Effect.fail(new VaultSealed(request))
      if (health?._tag === "Some" && health.value.standby) {
        return Effect.fail(new VaultStandby({ ...request, status: 503, errors }))
      }
      return Effect.fail(
        new VaultUnexpectedResponse({
          ...request,
          status: 503,
          detail: errors.length > 0 ? errors.join("; ") : "service unavailable"
        })
      )
    })
  )
}

const HealthFlags = Schema.Struct({ sealed: Schema.Boolean, standby: Schema.Boolean })

const tlsCodes = /CERT|SSL|TLS|UNABLE_TO_|SELF_SIGNED|EPROTO|ALTNAME|HANDSHAKE/

const transportError = (
  connection: Connection,
  call: Call,
  error: HttpClientError.HttpClientError
): VaultUnreachable | VaultTlsError => {
  const request = describe(connection, call)
  const cause = rootCause(error.cause)
  const code = typeof cause?.code === "string" ? cause.code : ""
  const detail = cause?.message ?? error.reason
  if (tlsCodes.test(code)) return new VaultTlsError({ ...request, detail: `${detail} (${code})` })
  switch (code) {
    case "ECONNREFUSED":
      return new VaultUnreachable({ ...request, reason: "ConnectionRefused", detail })
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new VaultUnreachable({ ...request, reason: "HostNotFound", detail })
    case "ECONNRESET":
    case "EPIPE":
    case "ERR_STREAM_PREMATURE_CLOSE":
      return new VaultUnreachable({ ...request, reason: "ConnectionReset", detail })
    case "ETIMEDOUT":
      return new VaultUnreachable({ ...request, reason: "Timeout", detail })
  }
  return new VaultUnreachable({ ...request, reason: "Other", detail: code === "" ? detail : `${detail} (${code})` })
}

interface NodeErrorLike {
  readonly code?: unknown
  readonly message: string
}

// Node wraps connection failures (an AggregateError when several addresses were tried, or a cause chain); the first
// error with a code says what went wrong.
const rootCause = (cause: unknown): NodeErrorLike | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const error = current as Error & { code?: unknown; errors?: ReadonlyArray<unknown> }
    if (typeof error.code === "string") return error
    if (Array.isArray(error.errors) && error.errors.length > 0) current = error.errors[0]
    else if (error.cause !== undefined) current = error.cause
    else return error
  }
  return current instanceof Error ? current : undefined
}

/** Decodes a 2xx body, reporting only where it departs from the documented shape, never the values it holds. */
export const decode = <A, I>(
  connection: Connection,
  call: Call,
  schema: Schema.Schema<A, I>
) =>
(answer: Answer): Effect.Effect<A, VaultUnexpectedResponse> =>
  Schema.decodeUnknown(schema)(answer.body).pipe(
    Effect.mapError((error) => {
      const fields = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
        issue.path.length === 0 ? "(body)" : issue.path.join(".")
      )
      return new VaultUnexpectedResponse({
        ...describe(connection, call),
        status: answer.status,
        detail: `the body does not have the shape Vault's API documents at ${[...new Set(fields)].join(", ")}`
      })
    })
  )

/**
 * How long to wait for a KV v2 mount that is still moving to the versioned layout: Vault documents this state right
 * after the engine is enabled and says it lasts a brief period. Exponential from 100 ms, each wait at most one second,
 * seven retries, about four and a half seconds in all.
 */
export const kvUpgradeSchedule = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.intersect(Schedule.recurs(7))
)

/** Retries an effect while Vault reports that the KV v2 engine is upgrading, and only then. */
export const retryWhileKvUpgrading = <A, R>(effect: Effect.Effect<A, VaultError, R>): Effect.Effect<A, VaultError, R> =>
  effect.pipe(
    Effect.tapError((error) =>
      error._tag === "VaultBadRequest" && isKvUpgradeMessage(error.errors)
        ? Effect.logDebug("the KV v2 engine is upgrading its storage; retrying").pipe(
          Effect.annotateLogs({ component: "vault", path: error.path })
        )
        : Effect.void
    ),
    Effect.retry({
      schedule: kvUpgradeSchedule,
      while: (error) => error._tag === "VaultBadRequest" && isKvUpgradeMessage(error.errors)
    })
  )
