/**
 * The Kubernetes client CloudTaser uses, as an Effect service over `@kubernetes/client-node`: a kubeconfig context's
 * API server, with namespaces, secrets, config maps, service accounts, cluster role bindings, TokenRequest and
 * TokenReview, and errors that name the context, the object and what to check.
 */
import type {
  ConfigurationOptions,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Namespace,
  V1Secret,
  V1ServiceAccount
} from "@kubernetes/client-node"
import {
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  RbacAuthorizationV1Api,
  VersionApi
} from "@kubernetes/client-node"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import * as Fs from "node:fs/promises"
import type { Operation, Target } from "./internal/ClientErrors.ts"
import { describe, toKubeError } from "./internal/ClientErrors.ts"
import { KubeDevApi } from "./KubeDevApi.ts"
import type { KubeError } from "./KubeError.ts"
import { KubeConfigError, KubeUnreachable } from "./KubeError.ts"

/** Where the kubeconfig comes from. */
export type KubeconfigSource =
  | { readonly _tag: "File"; readonly path: string }
  | { readonly _tag: "Text"; readonly yaml: string }
  /** `KUBECONFIG`, then `~/.kube/config`, then the pod's in-cluster service account. */
  | { readonly _tag: "Default" }

/** How to build a client. */
export interface KubeOptions {
  readonly kubeconfig?: KubeconfigSource | undefined
  /** The context to use; default the kubeconfig's current context. */
  readonly context?: string | undefined
  /** Each request fails as unreachable after this long; default 30 seconds. */
  readonly requestTimeout?: Duration.DurationInput | undefined
}

/** The API server a context points at. */
export interface ClusterInfo {
  readonly context: string
  readonly server: string
  /** The CA the context trusts for the server, PEM; undefined when it relies on the system's CAs. */
  readonly caPem: string | undefined
  readonly insecureSkipTlsVerify: boolean
}

/** The API server's version, as `/version` reports it. */
export interface ServerVersion {
  readonly major: string
  readonly minor: string
  readonly gitVersion: string
  readonly platform: string
}

/** What an upsert did. */
export interface Applied<A> {
  readonly action: "created" | "replaced"
  readonly object: A
}

/** A token issued by TokenRequest. */
export interface IssuedToken {
  readonly token: Redacted.Redacted<string>
  readonly expiresAt: Date
}

/** What a TokenRequest asks for. */
export interface RequestTokenOptions {
  /** Default: the API server's own audience. */
  readonly audiences?: ReadonlyArray<string> | undefined
  /** Default 3600; the API server refuses less than 600. */
  readonly expirationSeconds?: number | undefined
  /** Binds the token to a pod: it stops being valid when the pod is deleted. */
  readonly boundPod?: { readonly name: string; readonly uid: string } | undefined
}

/** The outcome of a TokenReview. */
export interface TokenReviewResult {
  readonly authenticated: boolean
  readonly user: {
    readonly username: string
    readonly uid: string
    readonly groups: ReadonlyArray<string>
    readonly extra: Readonly<Record<string, ReadonlyArray<string>>>
  } | undefined
  readonly audiences: ReadonlyArray<string>
  /** The API server's reason for not authenticating the token. */
  readonly error: string | undefined
}

/** Which objects a list returns, in the API server's selector syntax (`app=broker,tier!=web`). */
export interface ListOptions {
  readonly labelSelector?: string | undefined
  readonly fieldSelector?: string | undefined
}

/** Reads, writes and deletes one namespaced kind. */
export interface NamespacedObjects<A> {
  readonly list: (namespace: string, options?: ListOptions) => Effect.Effect<ReadonlyArray<A>, KubeError>
  readonly get: (namespace: string, name: string) => Effect.Effect<A, KubeError>
  readonly create: (namespace: string, object: A) => Effect.Effect<A, KubeError>
  /** Replaces the object; with no resourceVersion in it, whatever version is stored is overwritten. */
  readonly replace: (namespace: string, object: A) => Effect.Effect<A, KubeError>
  /** Creates the object, or replaces the stored one, retrying when it changes in between. */
  readonly apply: (namespace: string, object: A) => Effect.Effect<Applied<A>, KubeError>
  readonly delete: (namespace: string, name: string) => Effect.Effect<void, KubeError>
}

/** Reads, writes and deletes one cluster-scoped kind. */
export interface ClusterObjects<A> {
  readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<A>, KubeError>
  readonly get: (name: string) => Effect.Effect<A, KubeError>
  readonly create: (object: A) => Effect.Effect<A, KubeError>
  readonly replace: (object: A) => Effect.Effect<A, KubeError>
  readonly apply: (object: A) => Effect.Effect<Applied<A>, KubeError>
  readonly delete: (name: string) => Effect.Effect<void, KubeError>
}

/** A client bound to one kubeconfig context. */
export interface KubeShape {
  readonly cluster: ClusterInfo
  readonly version: () => Effect.Effect<ServerVersion, KubeError>
  readonly namespaces: ClusterObjects<V1Namespace>
  readonly secrets: NamespacedObjects<V1Secret>
  readonly configMaps: NamespacedObjects<V1ConfigMap>
  readonly serviceAccounts: NamespacedObjects<V1ServiceAccount>
  readonly clusterRoleBindings: ClusterObjects<V1ClusterRoleBinding>
  /** Issues a token for a service account (TokenRequest), as `kubectl create token` does. */
  readonly requestToken: (
    namespace: string,
    serviceAccount: string,
    options?: RequestTokenOptions
  ) => Effect.Effect<IssuedToken, KubeError>
  /** Asks the API server who a token belongs to (TokenReview), as Vault's Kubernetes auth does. */
  readonly reviewToken: (
    token: Redacted.Redacted<string> | string,
    audiences?: ReadonlyArray<string>
  ) => Effect.Effect<TokenReviewResult, KubeError>
}

const sourceName = (source: KubeconfigSource): string =>
  source._tag === "File" ? source.path : source._tag === "Text" ? "the given kubeconfig text" : "the default locations"

const messageOf = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

const loadConfig = (source: KubeconfigSource, context: string | undefined) =>
  Effect.gen(function*() {
    const config = new KubeConfig()
    yield* Effect.try({
      try: () => {
        if (source._tag === "File") config.loadFromFile(source.path)
        else if (source._tag === "Text") config.loadFromString(source.yaml)
        else config.loadFromDefault()
      },
      // Only the first line: YAML parse errors go on to quote the kubeconfig, which may hold a token.
      catch: (cause) =>
        new KubeConfigError({
          reason: "unreadable",
          source: sourceName(source),
          detail: messageOf(cause).split("\n")[0]!.slice(0, 200)
        })
    })
    if (context !== undefined) {
      if (config.getContextObject(context) === null) {
        const known = config.getContexts().map((c) => c.name).join(", ")
        return yield* new KubeConfigError({
          reason: "no_context",
          source: sourceName(source),
          context,
          detail: known === "" ? "it has no contexts" : `it has ${known}`
        })
      }
      config.setCurrentContext(context)
    }
    const current = config.getCurrentContext()
    const cluster = config.getCurrentCluster()
    if (cluster === null || cluster.server === "") {
      return yield* new KubeConfigError({
        reason: current ? "no_cluster" : "no_context",
        source: sourceName(source),
        context: current ?? "",
        detail: current ? "its cluster is missing or has no server" : "the kubeconfig has no current context"
      })
    }
    const caPem = cluster.caData !== undefined && cluster.caData !== ""
      ? Buffer.from(cluster.caData, "base64").toString("utf8")
      : cluster.caFile !== undefined && cluster.caFile !== ""
      ? yield* Effect.tryPromise({
        try: () => Fs.readFile(cluster.caFile!, "utf8"),
        catch: (cause) =>
          new KubeConfigError({
            reason: "no_cluster",
            source: sourceName(source),
            context: current,
            detail: `its certificate-authority file cannot be read (${messageOf(cause)})`
          })
      })
      : undefined
    const info: ClusterInfo = {
      context: current,
      server: cluster.server,
      caPem,
      insecureSkipTlsVerify: cluster.skipTLSVerify
    }
    return { config, info }
  })

type Selectors = { labelSelector?: string; fieldSelector?: string }

const selectorsOf = (options: ListOptions): Selectors => ({
  ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
  ...(options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector })
})

/** Lets an interrupted Effect abort the HTTP request it started. */
const abortable = (signal: AbortSignal): ConfigurationOptions => ({
  middleware: [{
    pre: (request) => {
      request.setSignal(signal)
      return new Observable(Promise.resolve(request))
    },
    post: (response) => new Observable(Promise.resolve(response))
  }],
  middlewareMergeStrategy: "append"
})

/** Builds a client for one context of a kubeconfig. */
export const make = Effect.fn("Kube.make")(function*(options: KubeOptions = {}) {
  const { config, info } = yield* loadConfig(options.kubeconfig ?? { _tag: "Default" }, options.context)
  const core = config.makeApiClient(CoreV1Api)
  const rbac = config.makeApiClient(RbacAuthorizationV1Api)
  const authentication = config.makeApiClient(AuthenticationV1Api)
  const versionApi = config.makeApiClient(VersionApi)
  const timeout = Duration.decode(options.requestTimeout ?? "30 seconds")
  const target: Target = {
    context: info.context,
    server: info.server,
    execCommand: config.getCurrentUser()?.exec?.command
  }

  const call = <A>(operation: Operation, run: (options: ConfigurationOptions) => Promise<A>) =>
    Effect.tryPromise({
      try: (signal) => run(abortable(signal)),
      catch: (cause) => toKubeError(cause, target, operation)
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new KubeUnreachable({
            context: target.context,
            server: target.server,
            operation: describe(operation),
            detail: `no answer within ${Duration.format(timeout)}`,
            reason: "timeout"
          })
      }),
      Effect.annotateSpans({
        "kube.context": info.context,
        "kube.verb": operation.verb,
        "kube.resource": operation.resource,
        ...(operation.namespace === undefined ? {} : { "kube.namespace": operation.namespace }),
        ...(operation.name === undefined ? {} : { "kube.name": operation.name })
      })
    )

  const nameOf = (object: { metadata?: { name?: string } }) => object.metadata?.name ?? ""

  const withVersion = <A extends { metadata?: { resourceVersion?: string } }>(object: A, resourceVersion?: string) =>
    ({ ...object, metadata: { ...object.metadata, resourceVersion } }) as A

  /** Get, then create or replace; a write that loses a race is retried on a fresh read. */
  const upsert = <A extends { metadata?: { name?: string; resourceVersion?: string } }>(
    get: () => Effect.Effect<A, KubeError>,
    create: () => Effect.Effect<A, KubeError>,
    replace: (current: A) => Effect.Effect<A, KubeError>
  ): Effect.Effect<Applied<A>, KubeError> => {
    const attempt = get().pipe(
      Effect.map((current) => ({ found: true as const, current })),
      Effect.catchTag("KubeNotFound", () => Effect.succeed({ found: false as const, current: undefined })),
      Effect.flatMap(({ current, found }): Effect.Effect<Applied<A>, KubeError> =>
        found
          ? Effect.map(replace(current), (object) => ({ action: "replaced", object }))
          : Effect.map(create(), (object) => ({ action: "created", object }))
      )
    )
    const retry = (left: number): Effect.Effect<Applied<A>, KubeError> =>
      attempt.pipe(
        Effect.catchIf(
          (error) => left > 0 && (error._tag === "KubeConflict" || error._tag === "KubeAlreadyExists"),
          () => retry(left - 1)
        )
      )
    return retry(3)
  }

  const namespaced = <A extends { metadata?: { name?: string; resourceVersion?: string } }>(
    kind: string,
    resource: string,
    api: {
      readonly list: (namespace: string, selectors: Selectors, o: ConfigurationOptions) => Promise<{ items: Array<A> }>
      readonly read: (namespace: string, name: string, o: ConfigurationOptions) => Promise<A>
      readonly create: (namespace: string, body: A, o: ConfigurationOptions) => Promise<A>
      readonly replace: (
        namespace: string,
        name: string,
        body: A,
        o: ConfigurationOptions
      ) => Promise<A>
      readonly delete: (namespace: string, name: string, o: ConfigurationOptions) => Promise<unknown>
    }
  ): NamespacedObjects<A> => {
    const get = Effect.fn(`Kube.get${kind}`)(function*(namespace: string, name: string) {
      return yield* call({ verb: "get", resource, namespace, name }, (o) => api.read(namespace, name, o))
    })
    const create = Effect.fn(`Kube.create${kind}`)(function*(namespace: string, object: A) {
      const name = nameOf(object)
      return yield* call({ verb: "create", resource, namespace, name }, (o) => api.create(namespace, object, o))
    })
    const replace = Effect.fn(`Kube.replace${kind}`)(function*(namespace: string, object: A) {
      const name = nameOf(object)
      return yield* call({ verb: "update", resource, namespace, name }, (o) => api.replace(namespace, name, object, o))
    })
    return {
      list: Effect.fn(`Kube.list${kind}s`)(function*(namespace: string, options: ListOptions = {}) {
        const list = yield* call(
          { verb: "list", resource, namespace },
          (o) => api.list(namespace, selectorsOf(options), o)
        )
        return list.items
      }),
      get,
      create,
      replace,
      apply: Effect.fn(`Kube.apply${kind}`)(function*(namespace: string, object: A) {
        return yield* upsert(
          () => get(namespace, nameOf(object)),
          () => create(namespace, withVersion(object)),
          (current) => replace(namespace, withVersion(object, current.metadata?.resourceVersion))
        )
      }),
      delete: Effect.fn(`Kube.delete${kind}`)(function*(namespace: string, name: string) {
        yield* call({ verb: "delete", resource, namespace, name }, (o) => api.delete(namespace, name, o))
      })
    }
  }

  const clusterScoped = <A extends { metadata?: { name?: string; resourceVersion?: string } }>(
    kind: string,
    resource: string,
    api: {
      readonly list: (selectors: Selectors, o: ConfigurationOptions) => Promise<{ items: Array<A> }>
      readonly read: (name: string, o: ConfigurationOptions) => Promise<A>
      readonly create: (body: A, o: ConfigurationOptions) => Promise<A>
      readonly replace: (name: string, body: A, o: ConfigurationOptions) => Promise<A>
      readonly delete: (name: string, o: ConfigurationOptions) => Promise<unknown>
    },
    /** When the stored object cannot be replaced by the desired one (an immutable field differs). */
    mustRecreate: (current: A, desired: A) => boolean = () => false
  ): ClusterObjects<A> => {
    const get = Effect.fn(`Kube.get${kind}`)(function*(name: string) {
      return yield* call({ verb: "get", resource, name }, (o) => api.read(name, o))
    })
    const create = Effect.fn(`Kube.create${kind}`)(function*(object: A) {
      return yield* call({ verb: "create", resource, name: nameOf(object) }, (o) => api.create(object, o))
    })
    const replace = Effect.fn(`Kube.replace${kind}`)(function*(object: A) {
      const name = nameOf(object)
      return yield* call({ verb: "update", resource, name }, (o) => api.replace(name, object, o))
    })
    const remove = Effect.fn(`Kube.delete${kind}`)(function*(name: string) {
      yield* call({ verb: "delete", resource, name }, (o) => api.delete(name, o))
    })
    return {
      list: Effect.fn(`Kube.list${kind}s`)(function*(options: ListOptions = {}) {
        const list = yield* call({ verb: "list", resource }, (o) => api.list(selectorsOf(options), o))
        return list.items
      }),
      get,
      create,
      replace,
      apply: Effect.fn(`Kube.apply${kind}`)(function*(object: A) {
        return yield* upsert(
          () => get(nameOf(object)),
          () => create(withVersion(object)),
          (current) =>
            mustRecreate(current, object)
              ? remove(nameOf(object)).pipe(Effect.zipRight(create(withVersion(object))))
              : replace(withVersion(object, current.metadata?.resourceVersion))
        )
      }),
      delete: remove
    }
  }

  const service: KubeShape = {
    cluster: info,
    version: Effect.fn("Kube.version")(function*() {
      const version = yield* call({ verb: "get", resource: "version" }, (o) => versionApi.getCode({}, o))
      return {
        major: version.major,
        minor: version.minor,
        gitVersion: version.gitVersion,
        platform: version.platform
      }
    }),
    namespaces: clusterScoped<V1Namespace>("Namespace", "namespaces", {
      list: (selectors, o) => core.listNamespace(selectors, o),
      read: (name, o) => core.readNamespace({ name }, o),
      create: (body, o) => core.createNamespace({ body }, o),
      replace: (name, body, o) => core.replaceNamespace({ name, body }, o),
      delete: (name, o) => core.deleteNamespace({ name }, o)
    }),
    secrets: namespaced<V1Secret>("Secret", "secrets", {
      list: (namespace, selectors, o) => core.listNamespacedSecret({ namespace, ...selectors }, o),
      read: (namespace, name, o) => core.readNamespacedSecret({ namespace, name }, o),
      create: (namespace, body, o) => core.createNamespacedSecret({ namespace, body }, o),
      replace: (namespace, name, body, o) => core.replaceNamespacedSecret({ namespace, name, body }, o),
      delete: (namespace, name, o) => core.deleteNamespacedSecret({ namespace, name }, o)
    }),
    configMaps: namespaced<V1ConfigMap>("ConfigMap", "configmaps", {
      list: (namespace, selectors, o) => core.listNamespacedConfigMap({ namespace, ...selectors }, o),
      read: (namespace, name, o) => core.readNamespacedConfigMap({ namespace, name }, o),
      create: (namespace, body, o) => core.createNamespacedConfigMap({ namespace, body }, o),
      replace: (namespace, name, body, o) => core.replaceNamespacedConfigMap({ namespace, name, body }, o),
      delete: (namespace, name, o) => core.deleteNamespacedConfigMap({ namespace, name }, o)
    }),
    serviceAccounts: namespaced<V1ServiceAccount>("ServiceAccount", "serviceaccounts", {
      list: (namespace, selectors, o) => core.listNamespacedServiceAccount({ namespace, ...selectors }, o),
      read: (namespace, name, o) => core.readNamespacedServiceAccount({ namespace, name }, o),
      create: (namespace, body, o) => core.createNamespacedServiceAccount({ namespace, body }, o),
      replace: (namespace, name, body, o) => core.replaceNamespacedServiceAccount({ namespace, name, body }, o),
      delete: (namespace, name, o) => core.deleteNamespacedServiceAccount({ namespace, name }, o)
    }),
    clusterRoleBindings: clusterScoped<V1ClusterRoleBinding>(
      "ClusterRoleBinding",
      "clusterrolebindings.rbac.authorization.k8s.io",
      {
        list: (selectors, o) => rbac.listClusterRoleBinding(selectors, o),
        read: (name, o) => rbac.readClusterRoleBinding({ name }, o),
        create: (body, o) => rbac.createClusterRoleBinding({ body }, o),
        replace: (name, body, o) => rbac.replaceClusterRoleBinding({ name, body }, o),
        delete: (name, o) => rbac.deleteClusterRoleBinding({ name }, o)
      },
      // The API server refuses to change a binding's roleRef, so a different role means a new binding.
      (current, desired) => JSON.stringify(current.roleRef) !== JSON.stringify(desired.roleRef)
    ),
    requestToken: Effect.fn("Kube.requestToken")(function*(
      namespace: string,
      serviceAccount: string,
      options: RequestTokenOptions = {}
    ) {
      const response = yield* call(
        { verb: "create", resource: "serviceaccounts/token", namespace, name: serviceAccount },
        (o) =>
          core.createNamespacedServiceAccountToken({
            namespace,
            name: serviceAccount,
            body: {
              apiVersion: "authentication.k8s.io/v1",
              kind: "TokenRequest",
              spec: {
                audiences: [...(options.audiences ?? [])],
                ...(options.expirationSeconds === undefined ? {} : { expirationSeconds: options.expirationSeconds }),
                ...(options.boundPod === undefined
                  ? {}
                  : { boundObjectRef: { apiVersion: "v1", kind: "Pod", ...options.boundPod } })
              }
            }
          }, o)
      )
      return {
        token: Redacted.make(response.status?.token ?? ""),
        expiresAt: new Date(response.status?.expirationTimestamp ?? 0)
      }
    }),
    reviewToken: Effect.fn("Kube.reviewToken")(function*(
      token: Redacted.Redacted<string> | string,
      audiences: ReadonlyArray<string> = []
    ) {
      const value = typeof token === "string" ? token : Redacted.value(token)
      const review = yield* call(
        { verb: "create", resource: "tokenreviews.authentication.k8s.io" },
        (o) =>
          authentication.createTokenReview({
            body: {
              apiVersion: "authentication.k8s.io/v1",
              kind: "TokenReview",
              spec: { token: value, ...(audiences.length > 0 ? { audiences: [...audiences] } : {}) }
            }
          }, o)
      )
      const status = review.status
      const user = status?.user
      return {
        authenticated: status?.authenticated === true,
        user: status?.authenticated === true && user !== undefined
          ? { username: user.username ?? "", uid: user.uid ?? "", groups: user.groups ?? [], extra: user.extra ?? {} }
          : undefined,
        audiences: status?.audiences ?? [],
        error: status?.error
      }
    })
  }
  return service
})

/** A Kubernetes client bound to one kubeconfig context. */
export class Kube extends Context.Tag("@cloudtaser/kube/Kube")<Kube, KubeShape>() {
  /** A client for the given kubeconfig and context. */
  static readonly layer = (options: KubeOptions = {}): Layer.Layer<Kube, KubeConfigError> =>
    Layer.effect(Kube, make(options))

  /** A client for the default kubeconfig (KUBECONFIG, ~/.kube/config or in-cluster) and its current context. */
  static readonly Default: Layer.Layer<Kube, KubeConfigError> = Layer.effect(Kube, make())

  /** A client against a fresh Kubernetes dev API (the double), with the dev API itself for fixtures. */
  static readonly Test: Layer.Layer<Kube | KubeDevApi> = Layer.effect(
    Kube,
    Effect.flatMap(KubeDevApi, (api) => make({ kubeconfig: { _tag: "Text", yaml: api.kubeconfig() } })).pipe(
      Effect.orDie
    )
  ).pipe(Layer.provideMerge(KubeDevApi.layer()))
}
