/**
 * The Kubernetes dev API: a DOUBLE of the Kubernetes API server for development and tests, serving over HTTPS the
 * discovery documents, namespaces, secrets, config maps, service accounts, cluster role bindings, TokenRequest and
 * TokenReview with the real API's paths, status codes and JSON shapes. Nothing in production depends on it.
 */
import { makeCa, makeLeaf } from "@cloudtaser/pki/Certificates"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import { Clock, Context, Duration, Effect, Layer, Option, Stream } from "effect"
import * as Crypto from "node:crypto"
import type * as Http from "node:http"
import * as Https from "node:https"
import type * as Tls from "node:tls"
import { adminUsername } from "./internal/DevApiAccess.ts"
import { handle } from "./internal/DevApiHandler.ts"
import { issueServiceAccountToken, seed } from "./internal/DevApiObjects.ts"
import type { ApiRequest, DevApiState } from "./internal/DevApiState.ts"
import { makeStore } from "./internal/DevApiStore.ts"
import type { Watch } from "./internal/DevApiWatch.ts"
import { isWatch, watchBacklog, watchEventLine } from "./internal/DevApiWatch.ts"
import * as Status from "./internal/KubeStatus.ts"
import { defaultIssuer, makeTokenAuthority } from "./internal/ServiceAccountTokens.ts"

/** Where the dev API listens. */
export interface KubeDevApiOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 0: any free port. */
  readonly port?: number | undefined
  /**
   * The service-account token issuer; default the one real clusters use,
   * `https://kubernetes.default.svc.cluster.local`.
   */
  readonly issuer?: string | undefined
}

/** A token to issue, as a TokenRequest would ask for it. */
export interface IssueTokenOptions {
  readonly namespace: string
  readonly serviceAccount: string
  /** Default: the API server's own audience (the issuer). */
  readonly audiences?: ReadonlyArray<string> | undefined
  /** Default 3600. Unlike TokenRequest, any positive lifetime is allowed, so tests can make short-lived tokens. */
  readonly expirationSeconds?: number | undefined
  /** Binds the token to a pod, as projected volume tokens are. */
  readonly pod?: { readonly name: string; readonly uid: string } | undefined
}

/** What a kubeconfig for the dev API should authenticate with; the admin token unless told otherwise. */
export interface KubeconfigOptions {
  readonly token?: string | undefined
  /** Authenticate as the admin with a client certificate (common name `cloudtaser-dev:admin`) instead of a token. */
  readonly clientCertificate?: boolean | undefined
  /** The user entry's name; default `cloudtaser-dev-admin`, or `cloudtaser-dev-token` with a given token. */
  readonly user?: string | undefined
  /** The context's namespace; default `default`. */
  readonly namespace?: string | undefined
}

/** A running dev API. */
export interface KubeDevApiShape {
  /** `https://host:port`. */
  readonly url: string
  readonly host: string
  readonly port: number
  /** The CA that issued the server's certificate, to trust in clients. */
  readonly caPem: string
  /** A bearer token that may do anything. */
  readonly adminToken: string
  /** The `iss` of the service-account tokens it issues. */
  readonly issuer: string
  /** A kubeconfig YAML with the server, its CA data, a token and the context `cloudtaser-dev` (current). */
  readonly kubeconfig: (options?: KubeconfigOptions) => string
  /**
   * Issues a service-account token signed by the dev API's key, creating the namespace and the service account when
   * missing.
   */
  readonly issueToken: (options: IssueTokenOptions) => Effect.Effect<string>
}

/** The name of the kubeconfig context (and cluster) the dev API writes. */
export const contextName = "cloudtaser-dev"

const maxBodyBytes = 3 * 1024 * 1024

// The hybrid post-quantum group first, as everywhere in CloudTaser; kubectl builds without it use X25519.
const keyExchangeGroups = "X25519MLKEM768:X25519:P-256:P-384"

const quote = (value: string) => JSON.stringify(value)

type Credentials =
  | { readonly _tag: "Token"; readonly token: string }
  | { readonly _tag: "Certificate"; readonly certPem: string; readonly keyPem: string }

const base64 = (text: string) => Buffer.from(text).toString("base64")

const kubeconfigYaml = (
  url: string,
  caPem: string,
  credentials: Credentials,
  user: string,
  namespace: string
): string =>
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${quote(contextName)}`,
    "  cluster:",
    `    server: ${quote(url)}`,
    `    certificate-authority-data: ${quote(base64(caPem))}`,
    "users:",
    `- name: ${quote(user)}`,
    "  user:",
    ...(credentials._tag === "Token"
      ? [`    token: ${quote(credentials.token)}`]
      : [
        `    client-certificate-data: ${quote(base64(credentials.certPem))}`,
        `    client-key-data: ${quote(base64(credentials.keyPem))}`
      ]),
    "contexts:",
    `- name: ${quote(contextName)}`,
    "  context:",
    `    cluster: ${quote(contextName)}`,
    `    user: ${quote(user)}`,
    `    namespace: ${quote(namespace)}`,
    `current-context: ${quote(contextName)}`,
    "preferences: {}",
    ""
  ].join("\n")

const realClock = Clock.make()

const serverCertificate = (host: string) =>
  Effect.gen(function*() {
    const ca = yield* makeCa({ commonName: "cloudtaser-dev kubernetes CA" })
    const ipAddresses = Array.from(new Set(["127.0.0.1", "::1", ...(/^[\d.]+$|:/.test(host) ? [host] : [])]))
    const dnsNames = Array.from(
      new Set([
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        ...(/^[\d.]+$|:/.test(host) ? [] : [host])
      ])
    )
    const leaf = yield* makeLeaf({ ca, role: "server", commonName: "kube-apiserver", dnsNames, ipAddresses })
    // The "broker" role is pki's client-certificate leaf (extended key usage clientAuth).
    const admin = yield* makeLeaf({ ca, role: "broker", commonName: adminUsername })
    return { caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem, admin }
  }).pipe(Effect.orDie)

const commonNameOf = (certificate: Tls.PeerCertificate): string | undefined => {
  const name = certificate.subject?.CN as string | Array<string> | undefined
  return typeof name === "string" && name !== "" ? name : undefined
}

const toRequest = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const url = new URL(request.url, "https://localhost")
  const hasBody = request.method === "POST" || request.method === "PUT" || request.method === "PATCH"
  const body = hasBody ? new Uint8Array(yield* request.arrayBuffer) : new Uint8Array(0)
  const socket = (request.source as Http.IncomingMessage).socket as Tls.TLSSocket
  const clientCommonName = socket.authorized ? commonNameOf(socket.getPeerCertificate()) : undefined
  const apiRequest: ApiRequest = {
    method: request.method,
    path: url.pathname,
    query: url.searchParams,
    accept: request.headers["accept"] ?? "",
    contentType: request.headers["content-type"] ?? "",
    authorization: request.headers["authorization"],
    clientCommonName,
    body
  }
  return apiRequest
})

const respond = (response: Status.ApiResponse) =>
  typeof response.body === "string"
    ? HttpServerResponse.text(response.body, { status: response.status })
    : HttpServerResponse.unsafeJson(response.body, { status: response.status })

const encoder = new TextEncoder()

/** The events of a watch, as JSON lines, until the client goes away or the watch's timeout passes. */
const watchStream = (state: DevApiState, watch: Watch, clock: Clock.Clock) => {
  const events = Stream.async<Uint8Array>((emit) => {
    const send = (line: string | undefined) => {
      if (line !== undefined) void emit.single(encoder.encode(line))
    }
    // The backlog is read and the subscription made in one synchronous step, so no change falls between them.
    for (const line of watchBacklog(state, watch, clock.unsafeCurrentTimeMillis())) send(line)
    const unsubscribe = state.store.subscribe((event) =>
      send(watchEventLine(state, watch, event, clock.unsafeCurrentTimeMillis()))
    )
    return Effect.sync(unsubscribe)
  })
  return watch.timeoutSeconds === undefined
    ? events
    : events.pipe(Stream.interruptAfter(Duration.seconds(watch.timeoutSeconds)))
}

const serve = (state: DevApiState) =>
  Effect.gen(function*() {
    const request = yield* toRequest.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxBodyBytes)),
      Effect.either
    )
    if (request._tag === "Left") {
      return respond(Status.failure(413, "RequestEntityTooLarge", "the request body could not be read or is too large"))
    }
    const now = yield* Clock.currentTimeMillis
    const response = yield* Effect.try(() => handle(state, request.right, now)).pipe(
      Effect.tapError((error) => Effect.logError("Kubernetes dev API failed to answer a request", error.cause)),
      Effect.orElseSucceed(() => Status.failure(500, "InternalError", "the dev API failed to answer this request"))
    )
    yield* Effect.logDebug("Kubernetes dev API request").pipe(
      Effect.annotateLogs({ method: request.right.method, path: request.right.path, status: response.status })
    )
    if (isWatch(response)) {
      const clock = yield* Effect.clock
      return HttpServerResponse.stream(watchStream(state, response.watch, clock), { contentType: "application/json" })
    }
    return respond(response)
  })

/**
 * Starts a dev API on an HTTPS port: a fresh CA and server certificate, a fresh signing key for service-account
 * tokens, a random admin token, and the namespaces a new cluster has. It stops when the scope closes.
 */
export const start = Effect.fn("KubeDevApi.start")(function*(options: KubeDevApiOptions = {}) {
  const host = options.host ?? "127.0.0.1"
  const certificate = yield* serverCertificate(host).pipe(Effect.withClock(realClock))
  const server = yield* NodeHttpServer.make(
    () =>
      Https.createServer({
        cert: certificate.certPem,
        key: certificate.keyPem,
        ecdhCurve: keyExchangeGroups,
        // Client certificates are asked for, not required: a request without one authenticates with a token.
        ca: certificate.caPem,
        requestCert: true,
        rejectUnauthorized: false
      }),
    { host, port: options.port ?? 0 }
  )
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  const urlHost = host.includes(":") ? `[${host}]` : host
  const url = `https://${urlHost}:${port}`
  const authority = makeTokenAuthority(options.issuer ?? defaultIssuer)
  const state: DevApiState = {
    store: makeStore(),
    authority,
    adminToken: Crypto.randomBytes(32).toString("base64url"),
    apiAudiences: [authority.issuer],
    serverAddress: `${urlHost}:${port}`
  }
  // Tokens are issued on the clock the server checks them with, so a test clock moves both together.
  const clock = yield* Effect.clock
  seed(state, yield* clock.currentTimeMillis)
  yield* server.serve(serve(state))
  yield* Effect.logInfo("Kubernetes dev API (a double for development and tests) is listening").pipe(
    Effect.annotateLogs({ component: "kube-dev-api", url })
  )

  return {
    url,
    host,
    port,
    caPem: certificate.caPem,
    adminToken: state.adminToken,
    issuer: authority.issuer,
    kubeconfig: (kubeconfigOptions: KubeconfigOptions = {}) =>
      kubeconfigYaml(
        url,
        certificate.caPem,
        kubeconfigOptions.clientCertificate === true
          ? { _tag: "Certificate", certPem: certificate.admin.certPem, keyPem: certificate.admin.keyPem }
          : { _tag: "Token", token: kubeconfigOptions.token ?? state.adminToken },
        kubeconfigOptions.user ??
          (kubeconfigOptions.token === undefined ? "cloudtaser-dev-admin" : "cloudtaser-dev-token"),
        kubeconfigOptions.namespace ?? "default"
      ),
    issueToken: (issue: IssueTokenOptions) =>
      clock.currentTimeMillis.pipe(
        Effect.map((now) => issueServiceAccountToken(state, issue, now)),
        Effect.withSpan("KubeDevApi.issueToken")
      )
  } satisfies KubeDevApiShape
})

/** The running Kubernetes dev API, a double of the Kubernetes API server. */
export class KubeDevApi extends Context.Tag("@cloudtaser/kube/KubeDevApi")<KubeDevApi, KubeDevApiShape>() {
  /** Starts a dev API for the enclosing scope. */
  static readonly start = start

  /** A layer holding a running dev API. */
  static readonly layer = (options: KubeDevApiOptions = {}): Layer.Layer<KubeDevApi> =>
    Layer.scoped(KubeDevApi, start(options).pipe(Effect.orDie))
}
