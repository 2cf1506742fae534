/**
 * The Vault client: the HTTP API calls CloudTaser makes to HashiCorp Vault, as an Effect service.
 *
 * It speaks to Vault over HTTPS trusting a given CA bundle or the system roots, sends the token in `X-Vault-Token`
 * and the namespace in `X-Vault-Namespace`, decodes every answer against the shape Vault's API documents, and turns
 * each failure into a `VaultError` that says what to check. The token never appears in a log, a span or an error.
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { readFile } from "node:fs/promises"
import * as client from "./internal/client.ts"
import * as wire from "./internal/clientSchema.ts"
import { VaultConfigError, type VaultError, VaultLoginDenied, VaultUnexpectedResponse } from "./VaultError.ts"

/** How to reach Vault. */
export interface VaultOptions {
  /** Vault's address, e.g. `https://vault.example:8200`. */
  readonly address: string
  /** The token sent with every call except health and login. */
  readonly token?: Redacted.Redacted<string> | undefined
  /** The Vault Enterprise namespace the calls are made in. */
  readonly namespace?: string | undefined
  /** PEM CA certificates to trust for Vault's certificate instead of the system roots. */
  readonly caCertPem?: string | ReadonlyArray<string> | undefined
  /** The host name to expect in Vault's certificate when it differs from the address's host. */
  readonly tlsServerName?: string | undefined
  /** How long one call may take before it fails; 30 seconds unless given. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** What `sys/health` reports, whatever status code it answered with. */
export interface VaultHealth extends Schema.Schema.Type<typeof wire.Health> {
  /** The HTTP status `sys/health` answered with. */
  readonly status: number
  /** The node's state as the status code documents it. */
  readonly state: "active" | "standby" | "performanceStandby" | "drSecondary" | "uninitialized" | "sealed"
}

/** A secrets engine or auth method mount. */
export interface VaultMount extends Schema.Schema.Type<typeof wire.MountEntry> {
  /** The mount path without its trailing slash, e.g. `secret` or `kubernetes`. */
  readonly path: string
}

/** The Kubernetes auth method's configuration as Vault returns it; the reviewer JWT is never returned. */
export interface KubernetesAuthConfig extends Schema.Schema.Type<typeof wire.KubernetesAuthConfigData> {}

/** What to write to the Kubernetes auth method's configuration. */
export interface KubernetesAuthConfigInput {
  /** The URL of the Kubernetes API Vault calls for TokenReview. */
  readonly kubernetesHost: string
  /** PEM CA certificate(s) for the Kubernetes API's TLS certificate. */
  readonly kubernetesCaCert?: string | undefined
  /** The service account JWT Vault uses to call TokenReview; without it, the JWT being logged in with is used. */
  readonly tokenReviewerJwt?: Redacted.Redacted<string> | undefined
  readonly pemKeys?: ReadonlyArray<string> | undefined
  readonly issuer?: string | undefined
  readonly disableIssValidation?: boolean | undefined
  readonly disableLocalCaJwt?: boolean | undefined
}

/** A Kubernetes auth role as Vault returns it; TTLs are in seconds. */
export interface KubernetesRole extends Schema.Schema.Type<typeof wire.KubernetesRoleData> {}

/** What to write to a Kubernetes auth role. */
export interface KubernetesRoleInput {
  readonly boundServiceAccountNames: ReadonlyArray<string>
  readonly boundServiceAccountNamespaces: ReadonlyArray<string>
  readonly tokenPolicies: ReadonlyArray<string>
  readonly audience?: string | undefined
  readonly aliasNameSource?: "serviceaccount_uid" | "serviceaccount_name" | undefined
  readonly tokenTtl?: Duration.DurationInput | undefined
  readonly tokenMaxTtl?: Duration.DurationInput | undefined
}

/** The token a login produced, with its lease; `leaseDuration` is in seconds. */
export interface VaultLogin extends Schema.Schema.Type<typeof wire.Auth> {}

/** The calling token's properties, without the token itself; `ttl` is in seconds. */
export interface VaultTokenInfo extends Schema.Schema.Type<typeof wire.TokenLookupData> {}

/** The calling token's lease after a renewal, without the token itself; `leaseDuration` is in seconds. */
export interface VaultTokenRenewal extends Omit<VaultLogin, "clientToken"> {}

/** One version of a KV v2 secret: its data and the version's metadata. */
export interface KvSecret extends Schema.Schema.Type<typeof wire.KvVersionData> {
  readonly data: { readonly [key: string]: unknown }
}

/** The version a KV v2 write created. */
export interface KvVersion extends Schema.Schema.Type<typeof wire.KvVersionData> {}

/** A KV v2 secret's metadata, shared by all its versions. */
export interface KvMetadata extends Schema.Schema.Type<typeof wire.KvMetadataData> {}

/** What to write to a KV v2 secret's metadata; fields left out keep Vault's defaults. */
export interface KvMetadataInput {
  readonly maxVersions?: number | undefined
  readonly casRequired?: boolean | undefined
  readonly deleteVersionAfter?: Duration.DurationInput | undefined
  readonly customMetadata?: { readonly [key: string]: string } | undefined
}

/** The calls CloudTaser makes to Vault. */
export interface VaultClient {
  /** The address calls go to. */
  readonly address: string
  /** A client for the same Vault, connection pool and namespace that sends another token, e.g. one from a login. */
  readonly withToken: (token: Redacted.Redacted<string>) => VaultClient

  /** Reads `sys/health`; sealed, standby and uninitialized nodes are reported, not failed. */
  readonly health: () => Effect.Effect<VaultHealth, VaultError>

  /** Lists the enabled secrets engines. */
  readonly listMounts: () => Effect.Effect<ReadonlyArray<VaultMount>, VaultError>
  /** Enables a KV version 2 secrets engine at `path`. */
  readonly enableKvV2: (
    path: string,
    options?: { readonly description?: string | undefined }
  ) => Effect.Effect<void, VaultError>

  /** Lists the enabled auth methods. */
  readonly listAuthMethods: () => Effect.Effect<ReadonlyArray<VaultMount>, VaultError>
  /** Enables an auth method of `type` (e.g. `kubernetes`) at `path`. */
  readonly enableAuthMethod: (
    path: string,
    type: string,
    options?: { readonly description?: string | undefined }
  ) => Effect.Effect<void, VaultError>

  /** Writes the Kubernetes auth method's configuration at `auth/<mount>/config` (mount `kubernetes` by default). */
  readonly writeKubernetesAuthConfig: (
    config: KubernetesAuthConfigInput,
    options?: { readonly mount?: string | undefined }
  ) => Effect.Effect<void, VaultError>
  /** Reads the Kubernetes auth method's configuration. */
  readonly readKubernetesAuthConfig: (
    options?: { readonly mount?: string | undefined }
  ) => Effect.Effect<KubernetesAuthConfig, VaultError>
  /** Creates or replaces a Kubernetes auth role. */
  readonly writeKubernetesRole: (
    name: string,
    role: KubernetesRoleInput,
    options?: { readonly mount?: string | undefined }
  ) => Effect.Effect<void, VaultError>
  /** Reads a Kubernetes auth role. */
  readonly readKubernetesRole: (
    name: string,
    options?: { readonly mount?: string | undefined }
  ) => Effect.Effect<KubernetesRole, VaultError>
  /** Logs in with a service account JWT; the client's own token is not sent. */
  readonly kubernetesLogin: (
    options: {
      readonly role: string
      readonly jwt: Redacted.Redacted<string>
      readonly mount?: string | undefined
    }
  ) => Effect.Effect<VaultLogin, VaultError>

  /** Creates or replaces an ACL policy. */
  readonly writePolicy: (name: string, policy: string) => Effect.Effect<void, VaultError>
  /** Reads an ACL policy's text. */
  readonly readPolicy: (name: string) => Effect.Effect<string, VaultError>
  /** Lists the ACL policies' names. */
  readonly listPolicies: () => Effect.Effect<ReadonlyArray<string>, VaultError>
  /** Deletes an ACL policy; deleting one that does not exist succeeds. */
  readonly deletePolicy: (name: string) => Effect.Effect<void, VaultError>

  /** Reads the latest version of a KV v2 secret, or the given version. */
  readonly kvRead: (
    mount: string,
    path: string,
    options?: { readonly version?: number | undefined }
  ) => Effect.Effect<KvSecret, VaultError>
  /**
   * Writes a new version of a KV v2 secret. With `cas`, the write succeeds only if the current version is `cas`
   * (0: only if the secret does not exist yet).
   */
  readonly kvWrite: (
    mount: string,
    path: string,
    data: { readonly [key: string]: unknown },
    options?: { readonly cas?: number | undefined }
  ) => Effect.Effect<KvVersion, VaultError>
  /** Reads a KV v2 secret's metadata. */
  readonly kvReadMetadata: (mount: string, path: string) => Effect.Effect<KvMetadata, VaultError>
  /** Writes a KV v2 secret's metadata without creating a version. */
  readonly kvWriteMetadata: (
    mount: string,
    path: string,
    metadata: KvMetadataInput
  ) => Effect.Effect<void, VaultError>
  /** Lists the keys under a KV v2 folder; folders end in `/`. An empty or missing folder lists nothing. */
  readonly kvList: (mount: string, path: string) => Effect.Effect<ReadonlyArray<string>, VaultError>

  /** Looks up the calling token. */
  readonly tokenLookupSelf: () => Effect.Effect<VaultTokenInfo, VaultError>
  /** Renews the calling token, by `increment` if given. */
  readonly tokenRenewSelf: (
    options?: { readonly increment?: Duration.DurationInput | undefined }
  ) => Effect.Effect<VaultTokenRenewal, VaultError>
  /** Revokes the calling token. */
  readonly tokenRevokeSelf: () => Effect.Effect<void, VaultError>
}

const healthStates: Record<number, VaultHealth["state"]> = {
  200: "active",
  429: "standby",
  472: "drSecondary",
  473: "performanceStandby",
  501: "uninitialized",
  503: "sealed"
}

const seconds = (duration: Duration.DurationInput): number => Math.ceil(Duration.toSeconds(Duration.decode(duration)))

const stripSlash = (path: string): string => path.replace(/\/+$/, "")

const defined = <A extends Record<string, unknown>>(fields: A): Partial<A> =>
  Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<A>

const clientFor = (connection: client.Connection): VaultClient => {
  const run = <A, I>(call: client.Call, schema: Schema.Schema<A, I>): Effect.Effect<A, VaultError> =>
    Effect.flatMap(client.send(connection, call), client.decode(connection, call, schema))

  const runVoid = (call: client.Call): Effect.Effect<void, VaultError> => Effect.asVoid(client.send(connection, call))

  const listMountTable = (path: string) =>
    run({ method: "GET", path, capability: "read" }, wire.MountTable).pipe(
      Effect.map((table) =>
        Object.entries(table.data).map(([mountPath, mount]) => ({ ...mount, path: stripSlash(mountPath) }))
          .sort((a, b) => a.path.localeCompare(b.path))
      )
    )

  const kubernetesMount = (options: { readonly mount?: string | undefined } | undefined): string =>
    client.apiPath(options?.mount ?? "kubernetes")

  return {
    address: connection.address,

    withToken: (token) => clientFor({ ...connection, token }),

    health: Effect.fn("Vault.health")(function*() {
      const call: client.Call = {
        method: "GET",
        path: "sys/health",
        capability: "read",
        authenticated: false,
        namespaced: false
      }
      const { raw, status } = yield* client.exchange(connection, call)
      const state = healthStates[status]
      if (state === undefined) {
        return yield* new VaultUnexpectedResponse({
          address: connection.address,
          method: call.method,
          path: call.path,
          status,
          detail: "sys/health answered with a status code it does not document"
        })
      }
      let body: unknown
      try {
        body = JSON.parse(raw)
      } catch {
        body = undefined
      }
      const health = yield* client.decode(connection, call, wire.Health)({ status, body })
      return { ...health, status, state }
    }),

    listMounts: Effect.fn("Vault.listMounts")(function*() {
      return yield* listMountTable("sys/mounts")
    }),

    enableKvV2: Effect.fn("Vault.enableKvV2")(function*(path, options) {
      const mount = client.apiPath(path)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      yield* runVoid({
        method: "POST",
        path: `sys/mounts/${mount}`,
        capability: "create or update",
        body: { type: "kv", options: { version: "2" }, ...defined({ description: options?.description }) }
      })
    }),

    listAuthMethods: Effect.fn("Vault.listAuthMethods")(function*() {
      return yield* listMountTable("sys/auth")
    }),

    enableAuthMethod: Effect.fn("Vault.enableAuthMethod")(function*(path, type, options) {
      const mount = client.apiPath(path)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      yield* runVoid({
        method: "POST",
        path: `sys/auth/${mount}`,
        capability: "sudo and create or update",
        body: { type, ...defined({ description: options?.description }) }
      })
    }),

    writeKubernetesAuthConfig: Effect.fn("Vault.writeKubernetesAuthConfig")(function*(config, options) {
      const mount = kubernetesMount(options)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      yield* runVoid({
        method: "POST",
        path: `auth/${mount}/config`,
        capability: "create or update",
        body: defined({
          kubernetes_host: config.kubernetesHost,
          kubernetes_ca_cert: config.kubernetesCaCert,
          token_reviewer_jwt: config.tokenReviewerJwt === undefined
            ? undefined
            : Redacted.value(config.tokenReviewerJwt),
          pem_keys: config.pemKeys,
          issuer: config.issuer,
          disable_iss_validation: config.disableIssValidation,
          disable_local_ca_jwt: config.disableLocalCaJwt
        })
      })
    }),

    readKubernetesAuthConfig: Effect.fn("Vault.readKubernetesAuthConfig")(function*(options) {
      const mount = kubernetesMount(options)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      const answer = yield* run(
        { method: "GET", path: `auth/${mount}/config`, capability: "read" },
        wire.KubernetesAuthConfig
      )
      return answer.data
    }),

    writeKubernetesRole: Effect.fn("Vault.writeKubernetesRole")(function*(name, role, options) {
      const mount = kubernetesMount(options)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      yield* runVoid({
        method: "POST",
        path: `auth/${mount}/role/${client.apiPath(name)}`,
        capability: "create or update",
        body: defined({
          bound_service_account_names: role.boundServiceAccountNames,
          bound_service_account_namespaces: role.boundServiceAccountNamespaces,
          token_policies: role.tokenPolicies,
          audience: role.audience,
          alias_name_source: role.aliasNameSource,
          token_ttl: role.tokenTtl === undefined ? undefined : seconds(role.tokenTtl),
          token_max_ttl: role.tokenMaxTtl === undefined ? undefined : seconds(role.tokenMaxTtl)
        })
      })
    }),

    readKubernetesRole: Effect.fn("Vault.readKubernetesRole")(function*(name, options) {
      const mount = kubernetesMount(options)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      const answer = yield* run(
        { method: "GET", path: `auth/${mount}/role/${client.apiPath(name)}`, capability: "read" },
        wire.KubernetesRole
      )
      return answer.data
    }),

    kubernetesLogin: Effect.fn("Vault.kubernetesLogin")(function*(options) {
      const mount = kubernetesMount(options)
      yield* Effect.annotateCurrentSpan("vault.mount", mount)
      const call: client.Call = {
        method: "POST",
        path: `auth/${mount}/login`,
        capability: "update",
        authenticated: false,
        body: { role: options.role, jwt: Redacted.value(options.jwt) }
      }
      const answer = yield* run(call, wire.AuthResponse).pipe(
        Effect.catchTags({
          VaultBadRequest: (error) => Effect.fail(loginDenied(error, options.role, 400)),
          VaultPermissionDenied: (error) => Effect.fail(loginDenied(error, options.role, 403))
        })
      )
      return answer.auth
    }),

    writePolicy: Effect.fn("Vault.writePolicy")(function*(name, policy) {
      yield* runVoid({
        method: "POST",
        path: `sys/policies/acl/${client.apiPath(name)}`,
        capability: "create or update",
        body: { policy }
      })
    }),

    readPolicy: Effect.fn("Vault.readPolicy")(function*(name) {
      const answer = yield* run(
        { method: "GET", path: `sys/policies/acl/${client.apiPath(name)}`, capability: "read" },
        wire.Policy
      )
      return answer.data.policy
    }),

    listPolicies: Effect.fn("Vault.listPolicies")(function*() {
      const answer = yield* run(
        { method: "GET", path: "sys/policies/acl", capability: "list", query: { list: "true" } },
        wire.KeyList
      )
      return answer.data.keys
    }),

    deletePolicy: Effect.fn("Vault.deletePolicy")(function*(name) {
      yield* runVoid({ method: "DELETE", path: `sys/policies/acl/${client.apiPath(name)}`, capability: "delete" })
    }),

    kvRead: Effect.fn("Vault.kvRead")(function*(mount, path, options) {
      const call: client.Call = {
        method: "GET",
        path: client.apiPath(mount, "data", path),
        capability: "read",
        query: options?.version === undefined ? undefined : { version: String(options.version) }
      }
      yield* Effect.annotateCurrentSpan("vault.path", call.path)
      const answer = yield* client.retryWhileKvUpgrading(run(call, wire.KvRead))
      return { ...answer.data.metadata, data: answer.data.data }
    }),

    kvWrite: Effect.fn("Vault.kvWrite")(function*(mount, path, data, options) {
      const call: client.Call = {
        method: "POST",
        path: client.apiPath(mount, "data", path),
        capability: options?.cas === 0 ? "create" : "create or update",
        body: options?.cas === undefined ? { data } : { options: { cas: options.cas }, data }
      }
      yield* Effect.annotateCurrentSpan("vault.path", call.path)
      const answer = yield* client.retryWhileKvUpgrading(run(call, wire.KvWritten))
      return answer.data
    }),

    kvReadMetadata: Effect.fn("Vault.kvReadMetadata")(function*(mount, path) {
      const call: client.Call = { method: "GET", path: client.apiPath(mount, "metadata", path), capability: "read" }
      yield* Effect.annotateCurrentSpan("vault.path", call.path)
      const answer = yield* client.retryWhileKvUpgrading(run(call, wire.KvMetadata))
      return answer.data
    }),

    kvWriteMetadata: Effect.fn("Vault.kvWriteMetadata")(function*(mount, path, metadata) {
      const call: client.Call = {
        method: "POST",
        path: client.apiPath(mount, "metadata", path),
        capability: "create or update",
        body: defined({
          max_versions: metadata.maxVersions,
          cas_required: metadata.casRequired,
          delete_version_after: metadata.deleteVersionAfter === undefined
            ? undefined
            : `${seconds(metadata.deleteVersionAfter)}s`,
          custom_metadata: metadata.customMetadata
        })
      }
      yield* Effect.annotateCurrentSpan("vault.path", call.path)
      yield* client.retryWhileKvUpgrading(runVoid(call))
    }),

    kvList: Effect.fn("Vault.kvList")(function*(mount, path) {
      const call: client.Call = {
        method: "GET",
        path: client.apiPath(mount, "metadata", path),
        capability: "list",
        query: { list: "true" }
      }
      yield* Effect.annotateCurrentSpan("vault.path", call.path)
      return yield* client.retryWhileKvUpgrading(run(call, wire.KeyList)).pipe(
        Effect.map((answer): ReadonlyArray<string> => answer.data.keys),
        // Vault answers an empty or missing folder with 404 and no error message.
        Effect.catchIf(
          (error) => error._tag === "VaultNotFound" && error.errors.length === 0,
          () => Effect.succeed([])
        )
      )
    }),

    tokenLookupSelf: Effect.fn("Vault.tokenLookupSelf")(function*() {
      const answer = yield* run(
        { method: "GET", path: "auth/token/lookup-self", capability: "read" },
        wire.TokenLookup
      )
      return answer.data
    }),

    tokenRenewSelf: Effect.fn("Vault.tokenRenewSelf")(function*(options) {
      const answer = yield* run(
        {
          method: "POST",
          path: "auth/token/renew-self",
          capability: "update",
          body: options?.increment === undefined ? {} : { increment: `${seconds(options.increment)}s` }
        },
        wire.AuthResponse
      )
      const { clientToken: _, ...renewal } = answer.auth
      return renewal
    }),

    tokenRevokeSelf: Effect.fn("Vault.tokenRevokeSelf")(function*() {
      yield* runVoid({ method: "POST", path: "auth/token/revoke-self", capability: "update" })
    })
  }
}

const loginDenied = (
  error: {
    readonly address: string
    readonly method: string
    readonly path: string
    readonly errors: ReadonlyArray<string>
  },
  role: string,
  status: number
) =>
  new VaultLoginDenied({
    address: error.address,
    method: error.method,
    path: error.path,
    role,
    status,
    errors: error.errors
  })

/** Builds a client from explicit options; its connection pool is closed with the scope. */
export const make = (options: VaultOptions): Effect.Effect<VaultClient, VaultConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const address = yield* client.parseAddress(options.address)
    yield* client.checkCaBundle(options.caCertPem)
    const http = yield* client.makeHttpClient({ caCertPem: options.caCertPem, serverName: options.tlsServerName })

    return clientFor({
      http,
      address,
      token: options.token,
      namespace: options.namespace === undefined || options.namespace === "" ? undefined : options.namespace,
      timeout: Duration.decode(options.timeout ?? "30 seconds")
    })
  })

/**
 * The client's configuration from the environment, named as Vault's own CLI names it: `VAULT_ADDR`, `VAULT_TOKEN`,
 * `VAULT_NAMESPACE`, `VAULT_CACERT` (a PEM file) and `VAULT_TLS_SERVER_NAME`.
 */
export const optionsFromConfig: Effect.Effect<VaultOptions, ConfigError.ConfigError | VaultConfigError> = Effect.gen(
  function*() {
    const config = yield* Config.all({
      address: Config.string("ADDR").pipe(Config.withDefault("https://127.0.0.1:8200")),
      token: Config.option(Config.redacted("TOKEN")),
      namespace: Config.option(Config.string("NAMESPACE")),
      caCertPath: Config.option(Config.string("CACERT")),
      tlsServerName: Config.option(Config.string("TLS_SERVER_NAME"))
    }).pipe(Config.nested("VAULT"))
    const caCertPem = yield* Option.match(config.caCertPath, {
      onNone: () => Effect.succeed(undefined),
      onSome: (path) =>
        Effect.tryPromise({
          try: () => readFile(path, "utf8"),
          catch: (cause) =>
            new VaultConfigError({
              detail: `the CA bundle ${path} (VAULT_CACERT) cannot be read: ${
                cause instanceof Error ? cause.message : String(cause)
              }`
            })
        })
    })
    return {
      address: config.address,
      token: Option.getOrUndefined(config.token),
      namespace: Option.getOrUndefined(config.namespace),
      caCertPem,
      tlsServerName: Option.getOrUndefined(config.tlsServerName)
    }
  }
)

/** The Vault client service; `Default` reads its configuration from the environment, `layer` takes it explicitly. */
export class Vault extends Effect.Service<Vault>()("@cloudtaser/vault/Vault", {
  scoped: Effect.flatMap(optionsFromConfig, make)
}) {
  /** A layer for a client built from explicit options, e.g. from the command line. */
  static readonly layer = (options: VaultOptions): Layer.Layer<Vault, VaultConfigError> =>
    Layer.scoped(Vault, Effect.map(make(options), (vault) => Vault.make(vault)))
}
