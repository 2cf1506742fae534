/**
 * `cloudtaser dev vault`: runs the Vault dev server, a DOUBLE of HashiCorp Vault's HTTP API for development and
 * tests, until SIGINT or SIGTERM.
 */
import * as VaultDevServer from "@cloudtaser/vault/VaultDevServer"
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Option, Schema } from "effect"
import * as Crypto from "node:crypto"
import { parseAddress } from "../ListenAddress.ts"

/** The command's options could not be used as given. */
export class DevVaultError extends Schema.TaggedError<DevVaultError>()("DevVaultError", {
  reason: Schema.Literal("bad_listen", "cert_without_key", "unreadable"),
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "bad_listen":
        return `--listen ${this.detail} is not HOST:PORT: pass for example --listen 127.0.0.1:8200 (port 0 picks a ` +
          "free port)"
      case "cert_without_key":
        return `${this.detail}: pass both --tls-cert FILE and --tls-key FILE (a PEM certificate and its PEM key), or ` +
          "neither for plain HTTP"
      case "unreadable":
        return `cannot read ${this.detail}: check the path and the file's permissions`
    }
  }
}

const listen = Options.text("listen").pipe(
  Options.withPseudoName("HOST:PORT"),
  Options.withDescription("Where to serve Vault's API; port 0 picks a free port. Default: 127.0.0.1:8200."),
  Options.withDefault("127.0.0.1:8200")
)

const rootToken = Options.text("root-token").pipe(
  Options.withPseudoName("TOKEN"),
  Options.withDescription("The root token, as `vault server -dev -dev-root-token-id` takes it. Default: a random one."),
  Options.optional
)

const tlsCert = Options.file("tls-cert").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription("PEM certificate to serve HTTPS with. Default: plain HTTP."),
  Options.optional
)

const tlsKey = Options.file("tls-key").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription("PEM private key of --tls-cert."),
  Options.optional
)

const readFile = (fs: FileSystem.FileSystem, path: string) =>
  fs.readFileString(path).pipe(Effect.mapError(() => new DevVaultError({ reason: "unreadable", detail: path })))

/** `cloudtaser dev vault`: serves the Vault dev server double until SIGINT or SIGTERM. */
export const devVaultCommand = Command.make(
  "vault",
  { listen, rootToken, tlsCert, tlsKey },
  (options) =>
    Effect.gen(function*() {
      const address = yield* parseAddress(options.listen).pipe(
        Effect.mapError(() => new DevVaultError({ reason: "bad_listen", detail: options.listen }))
      )
      const fs = yield* FileSystem.FileSystem
      if (Option.isSome(options.tlsCert) !== Option.isSome(options.tlsKey)) {
        const given = Option.isSome(options.tlsCert) ? "--tls-cert without --tls-key" : "--tls-key without --tls-cert"
        return yield* new DevVaultError({ reason: "cert_without_key", detail: given })
      }
      const tls = Option.isSome(options.tlsCert) && Option.isSome(options.tlsKey)
        ? { certPem: yield* readFile(fs, options.tlsCert.value), keyPem: yield* readFile(fs, options.tlsKey.value) }
        : undefined
      const token = Option.getOrElse(options.rootToken, () => `hvs.${Crypto.randomBytes(18).toString("base64url")}`)
      const server = yield* VaultDevServer.start({
        ...address,
        rootToken: token,
        ...(tls === undefined ? {} : { tls })
      })
      yield* Console.log("Vault dev server: a DOUBLE of HashiCorp Vault's HTTP API, for development and tests only.")
      yield* Console.log("It is not Vault: everything is kept in memory and lost when it stops.")
      yield* Console.log(`  VAULT_ADDR=${server.url}`)
      yield* Console.log(`  VAULT_TOKEN=${server.rootToken}`)
      yield* Console.log(`  unseal key (after sys/seal): ${server.unsealKey}`)
      yield* Console.log(
        "  mounted: secret/ (KV version 2), auth token/; enable Kubernetes auth with sys/auth/kubernetes"
      )
      yield* Console.log("Stop with Ctrl-C.")
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Run the Vault dev server, a double of HashiCorp Vault's HTTP API (KV version 2, token and Kubernetes auth, " +
      "ACL policies, seal state, sys/health) for development and tests. Not Vault: nothing is kept on disk."
  )
)
