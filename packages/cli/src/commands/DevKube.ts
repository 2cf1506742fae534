/**
 * `cloudtaser dev kube`: runs the Kubernetes dev API, a DOUBLE of the Kubernetes API server for development and
 * tests, and writes a kubeconfig that points kubectl and the CloudTaser tools at it.
 */
import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Option, Schema } from "effect"
import { parseAddress } from "../ListenAddress.ts"

/** The `--listen` value could not be read, or the kubeconfig could not be written. */
export class DevKubeError extends Schema.TaggedError<DevKubeError>()("DevKubeError", {
  reason: Schema.Literal("bad_listen", "kubeconfig_unwritable"),
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "bad_listen":
        return `--listen ${this.detail} is not HOST:PORT: pass for example --listen 127.0.0.1:6443 (port 0 picks a ` +
          "free port)"
      case "kubeconfig_unwritable":
        return `cannot write the kubeconfig to ${this.detail}: check that its directory exists and is writable, or ` +
          "pass another --kubeconfig-out FILE"
    }
  }
}

const listen = Options.text("listen").pipe(
  Options.withPseudoName("HOST:PORT"),
  Options.withDescription("HOST:PORT to serve HTTPS on; port 0 picks a free port. Default: 127.0.0.1:6443."),
  Options.withDefault("127.0.0.1:6443")
)

const kubeconfigOut = Options.text("kubeconfig-out").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription("where to write a kubeconfig for the dev API (context cloudtaser-dev, admin token)"),
  Options.optional
)

/** `cloudtaser dev kube`: serves the Kubernetes dev API until SIGINT or SIGTERM. */
export const devKubeCommand = Command.make(
  "kube",
  { listen, kubeconfigOut },
  (options) =>
    Effect.gen(function*() {
      const address = yield* parseAddress(options.listen).pipe(
        Effect.mapError(() => new DevKubeError({ reason: "bad_listen", detail: options.listen }))
      )
      const fs = yield* FileSystem.FileSystem
      const api = yield* KubeDevApi.start(address)
      yield* Console.log("Kubernetes dev API: a DOUBLE of the Kubernetes API server, for development and tests only.")
      yield* Console.log(`  server:  ${api.url}`)
      yield* Console.log(`  context: cloudtaser-dev (admin token, namespace default)`)
      if (Option.isSome(options.kubeconfigOut)) {
        const file = options.kubeconfigOut.value
        yield* fs.writeFileString(file, api.kubeconfig(), { mode: 0o600 }).pipe(
          Effect.mapError(() => new DevKubeError({ reason: "kubeconfig_unwritable", detail: file }))
        )
        yield* Console.log(`  kubeconfig: ${file}   (try: kubectl --kubeconfig ${file} get namespaces)`)
      } else {
        yield* Console.log("  pass --kubeconfig-out FILE to get a kubeconfig for kubectl")
      }
      yield* Console.log("Stop with Ctrl-C.")
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Run the Kubernetes dev API, a double of the Kubernetes API server (HTTPS, bearer tokens, TokenRequest, " +
      "TokenReview, namespaces, secrets, config maps, service accounts, cluster role bindings) for development " +
      "and tests. Not a cluster: nothing is scheduled and everything is kept in memory."
  )
)
