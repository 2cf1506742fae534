/**
 * `cloudtaser beacon` (also run alone as `cloudtaser-beacon`): the beacon relay with its operations endpoint,
 * JSON logs, optional OTLP tracing and a graceful drain on SIGTERM.
 */
import { BeaconMetrics } from "@cloudtaser/beacon/BeaconMetrics"
import * as BeaconServer from "@cloudtaser/beacon/BeaconServer"
import * as OpsServer from "@cloudtaser/beacon/OpsServer"
import * as Tracing from "@cloudtaser/beacon/Tracing"
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect, Fiber, Option, Schema } from "effect"
import { createPrivateKey, X509Certificate } from "node:crypto"
import { readFile } from "node:fs/promises"
import { isIP } from "node:net"
import { hostname } from "node:os"
import { formatAddress, type ListenAddress, parseAddress } from "../ListenAddress.ts"

const durationUnits: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Parses a duration such as `500ms`, `10s`, `5m`, `1h` or `1m30s` into milliseconds; a bare number is milliseconds.
 */
export const parseDuration = (text: string): Option.Option<number> => {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Option.some(Number(trimmed))
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(trimmed)) return Option.none()
  let total = 0
  for (const [, amount, , unit] of trimmed.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * durationUnits[unit]
  }
  return Number.isFinite(total) ? Option.some(Math.round(total)) : Option.none()
}

/** Formats milliseconds in the largest unit that divides them, as `parseDuration` reads it back. */
export const formatDuration = (ms: number): string =>
  ms !== 0 && ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms !== 0 && ms % 60_000 === 0
    ? `${ms / 60_000}m`
    : ms !== 0 && ms % 1000 === 0
    ? `${ms / 1000}s`
    : `${ms}ms`

/** The beacon's configuration could not be used as given. */
export class BeaconConfigError extends Schema.TaggedError<BeaconConfigError>()("BeaconConfigError", {
  reason: Schema.Literal(
    "no_certificate",
    "cert_without_key",
    "self_signed_and_cert",
    "unreadable",
    "unusable",
    "cannot_listen"
  ),
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "no_certificate":
        return "the beacon needs a TLS certificate for its public name. Get one from your usual CA (for example " +
          "cert-manager or Let's Encrypt) and pass --tls-cert FILE --tls-key FILE, or pass --self-signed to try " +
          "the beacon out with a throwaway certificate"
      case "cert_without_key":
        return `${this.detail}: pass both --tls-cert FILE and --tls-key FILE (PEM certificate chain and its key)`
      case "self_signed_and_cert":
        return "--self-signed makes its own certificate: pass either --self-signed or --tls-cert and --tls-key"
      case "unreadable":
        return `${this.detail}; check the path and the file's permissions`
      case "cannot_listen":
        return this.detail
      case "unusable":
        return `${this.detail}; give the PEM certificate chain (leaf first) and the PEM private key that belongs to it`
    }
  }
}

const defaults = BeaconServer.defaultBeaconOptions

const address = (name: string, fallback: string, description: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("HOST:PORT"),
    Options.withDescription(`${description} Default: ${fallback}.`),
    Options.withDefault(fallback),
    Options.mapEffect((text) =>
      Option.match(parseAddress(text), {
        onNone: () =>
          Effect.fail(
            ValidationError.invalidValue(
              HelpDoc.p(`--${name} ${text}: expected HOST:PORT, [IPV6]:PORT or :PORT (every interface), e.g. :443`)
            )
          ),
        onSome: Effect.succeed
      })
    )
  )

const duration = (name: string, fallbackMs: number, description: string, allowZero = false) =>
  Options.text(name).pipe(
    Options.withPseudoName("DURATION"),
    Options.withDescription(`${description} Default: ${formatDuration(fallbackMs)}.`),
    Options.withDefault(formatDuration(fallbackMs)),
    Options.mapEffect((text) =>
      Option.match(parseDuration(text), {
        onNone: () =>
          Effect.fail(
            ValidationError.invalidValue(
              HelpDoc.p(`--${name} ${text}: expected a duration such as 500ms, 10s, 5m, 1h or 1m30s`)
            )
          ),
        onSome: (ms) =>
          ms > 0 || allowZero
            ? Effect.succeed(ms)
            : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} ${text}: must be longer than zero`)))
      })
    )
  )

const count = (name: string, fallback: number, description: string) =>
  Options.integer(name).pipe(
    Options.withPseudoName("N"),
    Options.withDescription(`${description} Default: ${fallback}.`),
    Options.withDefault(fallback),
    Options.mapEffect((value) =>
      value >= 1
        ? Effect.succeed(value)
        : Effect.fail(
          ValidationError.invalidValue(HelpDoc.p(`--${name} ${value}: expected a whole number of 1 or more`))
        )
    )
  )

const options = {
  addr: address("addr", ":443", "Where clients connect: HOST:PORT, or :PORT for every interface; port 0 picks one."),
  tlsCert: Options.file("tls-cert").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription(
      "PEM certificate chain for the beacon's public name, leaf first (from your CA, e.g. cert-manager or " +
        "Let's Encrypt). Required unless --self-signed."
    ),
    Options.optional
  ),
  tlsKey: Options.file("tls-key").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("PEM private key of --tls-cert. Required with --tls-cert."),
    Options.optional
  ),
  selfSigned: Options.boolean("self-signed").pipe(
    Options.withDescription(
      "Make a throwaway self-signed certificate and log its SHA-256 fingerprint, for trying the beacon out. " +
        "Clients must be told to trust it. Default: off."
    )
  ),
  helloTimeout: duration(
    "hello-timeout",
    defaults.helloTimeoutMs,
    "How long a client has after the CHALLENGE to send its HELLO, and after PAIRED to send READY."
  ),
  maxWait: duration(
    "max-wait",
    defaults.maxWaitCapMs,
    "The longest a client may wait for its peer, whatever it asks for; a bridge then reconnects."
  ),
  pingInterval: duration("ping-interval", defaults.pingIntervalMs, "How often waiting clients are sent a PING."),
  maxWaitingPerHash: count(
    "max-waiting-per-hash",
    defaults.maxWaitingPerHash,
    "Waiting clients allowed per info hash, both roles together; more are refused with capacity."
  ),
  maxWaitingPerSource: count(
    "max-waiting-per-source",
    defaults.maxWaitingPerSource,
    "Waiting clients allowed per source IP address; more are refused with capacity."
  ),
  maxWaiting: count("max-waiting", defaults.maxWaitingTotal, "Waiting clients allowed in all."),
  maxConnections: count(
    "max-connections",
    defaults.maxConnections,
    "Open connections allowed in all; more are closed at once, before TLS."
  ),
  drainTimeout: duration(
    "drain-timeout",
    defaults.drainDeadlineMs,
    "On SIGTERM or SIGINT, how long paired sessions may keep relaying before they are closed.",
    true
  ),
  opsAddr: address("ops-addr", ":9090", "Where /healthz, /readyz and /metrics (Prometheus) are served over HTTP."),
  otlpEndpoint: Options.text("otlp-endpoint").pipe(
    Options.withPseudoName("URL"),
    Options.withDescription(
      "OTLP/HTTP collector to send traces to, e.g. http://otel-collector:4318 (spans go to /v1/traces). " +
        "Default: the OTEL_EXPORTER_OTLP_ENDPOINT environment variable, or no tracing."
    ),
    Options.withFallbackConfig(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT")),
    Options.optional,
    Options.mapEffect((endpoint) =>
      Option.isNone(endpoint) || /^https?:\/\/[^/]+/.test(endpoint.value)
        ? Effect.succeed(endpoint)
        : Effect.fail(
          ValidationError.invalidValue(
            HelpDoc.p(`--otlp-endpoint ${endpoint.value}: expected an http:// or https:// URL`)
          )
        )
    )
  )
}

/** The parsed command line of the beacon. */
export type BeaconFlags = Command.Command.ParseConfig<typeof options>

const readPem = (path: string, what: string) =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (cause) =>
      new BeaconConfigError({
        reason: "unreadable",
        detail: `cannot read the ${what} ${path} (${cause instanceof Error && "code" in cause ? cause.code : cause})`
      })
  })

/** Reads the certificate and key and checks that they are PEM and belong together, before any socket opens. */
const loadCertificate = Effect.fn("Beacon.loadCertificate")(function*(certPath: string, keyPath: string) {
  const certPem = yield* readPem(certPath, "TLS certificate")
  const keyPem = yield* readPem(keyPath, "TLS private key")

  const unusable = (detail: string) => new BeaconConfigError({ reason: "unusable", detail })
  const certificate = yield* Effect.try({
    try: () => new X509Certificate(certPem),
    catch: () => unusable(`${certPath} holds no PEM certificate`)
  })
  const key = yield* Effect.try({
    try: () => createPrivateKey(keyPem),
    catch: () => unusable(`${keyPath} holds no PEM private key`)
  })
  if (!certificate.checkPrivateKey(key)) {
    return yield* unusable(`the key in ${keyPath} does not belong to the certificate in ${certPath}`)
  }
  if (new Date(certificate.validTo).getTime() < Date.now()) {
    return yield* unusable(`the certificate in ${certPath} expired on ${certificate.validTo}`)
  }
  return { certPem, keyPem }
})

const isDnsName = (name: string): boolean =>
  name.length <= 253 && /^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/i.test(name)

// A self-signed certificate names this machine so that a client that pins it can also check the name it dialled.
const selfSignedNames = (host: string) => {
  const specific = host !== "0.0.0.0" && host !== "::"
  return {
    dnsNames: ["localhost", hostname(), ...(specific && isIP(host) === 0 ? [host] : [])].filter(isDnsName),
    ipAddresses: ["127.0.0.1", "::1", ...(specific && isIP(host) !== 0 ? [host] : [])]
  }
}

const tlsCredentials = Effect.fn("Beacon.tlsCredentials")(function*(flags: BeaconFlags) {
  if (flags.selfSigned) {
    if (Option.isSome(flags.tlsCert) || Option.isSome(flags.tlsKey)) {
      return yield* new BeaconConfigError({ reason: "self_signed_and_cert", detail: "" })
    }
    // Loaded only here: the certificate-building library would otherwise sit in the beacon's heap for nothing.
    const { makeServerCertificate } = yield* Effect.promise(() => import("@cloudtaser/pki/Certificates"))
    const issued = yield* makeServerCertificate({
      commonName: "cloudtaser-beacon",
      ...selfSignedNames(flags.addr.host)
    })
    yield* Effect.logWarning("using a self-signed certificate: for trying the beacon out only").pipe(
      Effect.annotateLogs({ fingerprintSha256: issued.fingerprint256 })
    )
    return { certPem: issued.certPem, keyPem: issued.keyPem }
  }
  if (Option.isNone(flags.tlsCert) && Option.isNone(flags.tlsKey)) {
    return yield* new BeaconConfigError({ reason: "no_certificate", detail: "" })
  }
  if (Option.isNone(flags.tlsCert) || Option.isNone(flags.tlsKey)) {
    const given = Option.isSome(flags.tlsCert) ? "--tls-cert was given without --tls-key" : "--tls-key was given alone"
    return yield* new BeaconConfigError({ reason: "cert_without_key", detail: given })
  }
  return yield* loadCertificate(flags.tlsCert.value, flags.tlsKey.value)
})

const listenFailure = (addr: ListenAddress, error: BeaconServer.BeaconStartError): string => {
  const where = formatAddress(addr)
  switch (error.reason) {
    case "address_in_use":
      return `${where} is already in use: stop the other process, or choose another address with --addr`
    case "permission_denied":
      return `not allowed to listen on ${where}: grant the capability to bind ports below 1024 ` +
        "(CAP_NET_BIND_SERVICE), or choose a port above 1023 with --addr"
    default:
      return `cannot listen on ${where} (${error.detail}): check --addr`
  }
}

/**
 * Runs the beacon until SIGTERM or SIGINT, then drains: `/readyz` turns 503, waiting clients get `shutting_down`,
 * paired sessions relay up to the drain timeout and are then closed.
 */
export const serve = (flags: BeaconFlags) =>
  Effect.gen(function*() {
    const tls = yield* tlsCredentials(flags)

    const beacon = yield* BeaconServer.make({
      host: flags.addr.host,
      port: flags.addr.port,
      tls,
      helloTimeoutMs: flags.helloTimeout,
      pingIntervalMs: flags.pingInterval,
      maxWaitCapMs: flags.maxWait,
      maxWaitingPerHash: flags.maxWaitingPerHash,
      maxWaitingPerSource: flags.maxWaitingPerSource,
      maxWaitingTotal: flags.maxWaiting,
      maxConnections: flags.maxConnections,
      drainDeadlineMs: flags.drainTimeout
    }).pipe(
      Effect.catchTag("BeaconStartError", (error) =>
        error.reason === "tls_credentials"
          ? new BeaconConfigError({ reason: "unusable", detail: error.detail })
          : new BeaconConfigError({ reason: "cannot_listen", detail: listenFailure(flags.addr, error) }))
    )
    const ops = yield* OpsServer.make({
      host: flags.opsAddr.host,
      port: flags.opsAddr.port,
      ready: Effect.sync(() => !beacon.draining)
    })

    // Added last so that it runs first on shutdown, while /readyz can still report the drain. Finalizers run
    // uninterruptibly on a fiber that was interrupted already, so the drain runs on a fiber of its own, where its
    // deadline can cut the wait for sessions short.
    yield* Effect.addFinalizer(() =>
      Effect.fork(Effect.interruptible(beacon.drain)).pipe(
        Effect.flatMap(Fiber.join),
        Effect.zipRight(Effect.logInfo("beacon stopped"))
      )
    )
    yield* Effect.logInfo("beacon listening").pipe(
      Effect.annotateLogs({ addr: formatAddress(beacon.address), opsAddr: formatAddress(ops.address) })
    )
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(BeaconMetrics.Default),
    Effect.provide(Tracing.layer({ endpoint: Option.getOrUndefined(flags.otlpEndpoint) })),
    Effect.annotateLogs({ component: "beacon" })
  )

const usage = "It pairs clients that prove the same info hash and copies their already encrypted bytes; it keeps " +
  "no state and sees no secrets. Logs are JSON lines on standard output; SIGTERM or SIGINT drains. Durations are " +
  "written like 500ms, 10s, 5m, 1h or 1m30s; a bare number is milliseconds."

/** The `beacon` command. */
export const beacon = Command.make("beacon", options, serve).pipe(
  Command.withDescription(`Run the beacon, the public relay where a bridge and a broker meet. ${usage}`)
)

/** Runs the beacon as the standalone program `cloudtaser-beacon` on the given `process.argv`. */
export const runBeacon = Command.run(
  Command.make("cloudtaser-beacon", options, serve).pipe(
    Command.withDescription(
      "The CloudTaser beacon, the public relay where a bridge and a broker meet (the same program as " +
        `\`cloudtaser beacon\`). ${usage}`
    )
  ),
  { name: "cloudtaser-beacon", version: "0.0.0" }
)
