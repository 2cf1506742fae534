/**
 * The Kubernetes auth method of the Vault dev server double: configuration, roles, and logins checked through the
 * cluster's TokenReview API, as Vault's own Kubernetes auth does them.
 */
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import * as Https from "node:https"
import { isDurationError, parseDuration } from "./duration.ts"
import type { DevRequest, DevResponse } from "./reply.ts"
import {
  badRequest,
  booleanField,
  failure,
  integerField,
  listField,
  noContent,
  notFound,
  ok,
  permissionDenied,
  randomId,
  stringField,
  unsupportedOperation,
  unsupportedPath
} from "./reply.ts"
import type { AuthMount, DevState } from "./state.ts"
import { systemMaxTtl } from "./state.ts"
import { authBlock, issueToken, sanitizePolicies } from "./tokenAuth.ts"

/** What one Kubernetes auth mount holds. */
export interface KubernetesAuthState {
  config: KubernetesConfig | undefined
  readonly roles: Map<string, KubernetesRole>
  /** One entity per service account, as Vault's identity store keeps an alias per login identity. */
  readonly entities: Map<string, string>
}

/** The mount's `config`. */
export interface KubernetesConfig {
  readonly kubernetesHost: string
  readonly kubernetesCaCert: string
  readonly tokenReviewerJwt: string
  readonly pemKeys: ReadonlyArray<string>
  readonly issuer: string
  readonly disableIssValidation: boolean
  readonly disableLocalCaJwt: boolean
}

/** One role: which service accounts may log in, and what their tokens get. */
export interface KubernetesRole {
  readonly boundServiceAccountNames: ReadonlyArray<string>
  readonly boundServiceAccountNamespaces: ReadonlyArray<string>
  readonly audience: string
  readonly aliasNameSource: string
  readonly tokenPolicies: ReadonlyArray<string>
  readonly tokenTtl: number
  readonly tokenMaxTtl: number
  readonly tokenExplicitMaxTtl: number
  readonly tokenPeriod: number
  readonly tokenNumUses: number
  readonly tokenNoDefaultPolicy: boolean
  readonly tokenType: string
}

/** An empty Kubernetes auth mount. */
export const newKubernetesAuthState = (): KubernetesAuthState => ({
  config: undefined,
  roles: new Map(),
  entities: new Map()
})

const isWrite = (request: DevRequest): boolean => request.method === "POST" || request.method === "PUT"

const serveConfig = (auth: KubernetesAuthState, request: DevRequest): DevResponse => {
  if (request.method === "GET") {
    const config = auth.config
    if (config === undefined) return notFound
    return ok({
      data: {
        kubernetes_host: config.kubernetesHost,
        kubernetes_ca_cert: config.kubernetesCaCert,
        pem_keys: config.pemKeys,
        issuer: config.issuer,
        disable_iss_validation: config.disableIssValidation,
        disable_local_ca_jwt: config.disableLocalCaJwt,
        token_reviewer_jwt_set: config.tokenReviewerJwt !== "",
        use_annotations_as_alias_metadata: false
      },
      mount_type: "kubernetes"
    })
  }
  if (!isWrite(request)) return unsupportedOperation
  const body = request.body
  const host = stringField(body, "kubernetes_host")
  if (host === undefined || host === "") return badRequest("no host provided")
  try {
    const parsed = new URL(host)
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error("scheme")
  } catch {
    return badRequest(`invalid kubernetes_host ${JSON.stringify(host)}: it must be an http or https URL`)
  }
  const caCert = stringField(body, "kubernetes_ca_cert") ?? ""
  if (caCert !== "") {
    try {
      new Crypto.X509Certificate(caCert)
    } catch {
      return badRequest("kubernetes_ca_cert is not a valid PEM certificate")
    }
  }
  const previous = auth.config
  auth.config = {
    kubernetesHost: host,
    kubernetesCaCert: caCert,
    tokenReviewerJwt: stringField(body, "token_reviewer_jwt") ?? "",
    pemKeys: listField(body, "pem_keys") ?? previous?.pemKeys ?? [],
    issuer: stringField(body, "issuer") ?? "",
    disableIssValidation: booleanField(body, "disable_iss_validation") ?? true,
    disableLocalCaJwt: booleanField(body, "disable_local_ca_jwt") ?? false
  }
  return noContent
}

const durationField = (
  body: Record<string, unknown>,
  keys: ReadonlyArray<string>,
  fallback: number
): number | { readonly error: string } => {
  for (const key of keys) {
    const parsed = parseDuration(body[key])
    if (isDurationError(parsed)) return { error: `invalid ${key}: ${parsed.error}` }
    if (parsed !== undefined) return parsed
  }
  return fallback
}

const writeRole = (auth: KubernetesAuthState, name: string, body: Record<string, unknown>): DevResponse => {
  const existing = auth.roles.get(name)
  const names = listField(body, "bound_service_account_names") ?? existing?.boundServiceAccountNames ?? []
  const namespaces = listField(body, "bound_service_account_namespaces") ??
    existing?.boundServiceAccountNamespaces ?? []
  if (names.length === 0) return badRequest("\"bound_service_account_names\" can not be empty")
  if (namespaces.length === 0) return badRequest("\"bound_service_account_namespaces\" can not be empty")
  if (names.length > 1 && names.includes("*")) {
    return badRequest("can not mix \"*\" with values for \"bound_service_account_names\"")
  }
  if (namespaces.length > 1 && namespaces.includes("*")) {
    return badRequest("can not mix \"*\" with values for \"bound_service_account_namespaces\"")
  }
  if (names[0] === "*" && namespaces[0] === "*") {
    return badRequest("service_account_names and service_account_namespaces can not both be \"*\"")
  }
  const tokenTtl = durationField(body, ["token_ttl", "ttl"], existing?.tokenTtl ?? 0)
  const tokenMaxTtl = durationField(body, ["token_max_ttl", "max_ttl"], existing?.tokenMaxTtl ?? 0)
  const tokenExplicitMaxTtl = durationField(body, ["token_explicit_max_ttl"], existing?.tokenExplicitMaxTtl ?? 0)
  const tokenPeriod = durationField(body, ["token_period", "period"], existing?.tokenPeriod ?? 0)
  for (const value of [tokenTtl, tokenMaxTtl, tokenExplicitMaxTtl, tokenPeriod]) {
    if (typeof value === "object") return badRequest(value.error)
  }
  if ((tokenMaxTtl as number) > 0 && (tokenTtl as number) > (tokenMaxTtl as number)) {
    return badRequest("\"token_ttl\" value must be less than \"token_max_ttl\" value")
  }
  const tokenNumUses = integerField(body, "token_num_uses") ?? integerField(body, "num_uses") ??
    existing?.tokenNumUses ?? 0
  if (tokenNumUses < 0) return badRequest("\"token_num_uses\" cannot be negative")
  const tokenType = stringField(body, "token_type") ?? existing?.tokenType ?? "default"
  if (tokenType !== "default" && tokenType !== "service") {
    // TODO: batch tokens are not issued by the double; a role asking for them is refused rather than given service
    // tokens that behave differently.
    return badRequest(`token_type ${JSON.stringify(tokenType)} is not supported by the dev server`)
  }
  const aliasNameSource = stringField(body, "alias_name_source") ?? existing?.aliasNameSource ?? "serviceaccount_uid"
  if (aliasNameSource !== "serviceaccount_uid" && aliasNameSource !== "serviceaccount_name") {
    return badRequest(`invalid alias_name_source ${JSON.stringify(aliasNameSource)}`)
  }
  auth.roles.set(name, {
    boundServiceAccountNames: names,
    boundServiceAccountNamespaces: namespaces,
    audience: stringField(body, "audience") ?? existing?.audience ?? "",
    aliasNameSource,
    tokenPolicies: listField(body, "token_policies") ?? listField(body, "policies") ?? existing?.tokenPolicies ?? [],
    tokenTtl: tokenTtl as number,
    tokenMaxTtl: tokenMaxTtl as number,
    tokenExplicitMaxTtl: tokenExplicitMaxTtl as number,
    tokenPeriod: tokenPeriod as number,
    tokenNumUses,
    tokenNoDefaultPolicy: booleanField(body, "token_no_default_policy") ?? existing?.tokenNoDefaultPolicy ?? false,
    tokenType
  })
  return noContent
}

const roleData = (role: KubernetesRole) => ({
  alias_name_source: role.aliasNameSource,
  audience: role.audience,
  bound_service_account_names: role.boundServiceAccountNames,
  bound_service_account_namespace_selector: "",
  bound_service_account_namespaces: role.boundServiceAccountNamespaces,
  token_bound_cidrs: [],
  token_explicit_max_ttl: role.tokenExplicitMaxTtl,
  token_max_ttl: role.tokenMaxTtl,
  token_no_default_policy: role.tokenNoDefaultPolicy,
  token_num_uses: role.tokenNumUses,
  token_period: role.tokenPeriod,
  token_policies: role.tokenPolicies,
  token_ttl: role.tokenTtl,
  token_type: role.tokenType,
  policies: role.tokenPolicies,
  ttl: role.tokenTtl,
  max_ttl: role.tokenMaxTtl,
  num_uses: role.tokenNumUses,
  period: role.tokenPeriod
})

const serveRole = (auth: KubernetesAuthState, name: string, request: DevRequest): DevResponse => {
  if (request.method === "LIST" || name === "") {
    if (request.method !== "LIST") return unsupportedOperation
    const keys = Array.from(auth.roles.keys()).sort()
    return keys.length === 0 ? notFound : ok({ data: { keys }, mount_type: "kubernetes" })
  }
  switch (request.method) {
    case "GET": {
      const role = auth.roles.get(name)
      return role === undefined ? notFound : ok({ data: roleData(role), mount_type: "kubernetes" })
    }
    case "POST":
    case "PUT":
      return writeRole(auth, name, request.body)
    case "DELETE":
      auth.roles.delete(name)
      return noContent
    default:
      return unsupportedOperation
  }
}

/** The service account a JWT claims to be, read without verifying it: the TokenReview does the verifying. */
interface ClaimedServiceAccount {
  readonly namespace: string
  readonly name: string
  readonly uid: string
  readonly audiences: ReadonlyArray<string>
}

const readClaims = (jwt: string): ClaimedServiceAccount | { readonly error: string } => {
  const parts = jwt.split(".")
  if (parts.length !== 3) return { error: "failed to parse the JWT: compact JWS format must have three parts" }
  let claims: Record<string, unknown>
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"))
  } catch {
    return { error: "failed to parse the JWT: its payload is not JSON" }
  }
  const kubernetes = claims["kubernetes.io"] as
    | { namespace?: unknown; serviceaccount?: { name?: unknown; uid?: unknown } }
    | undefined
  const text = (value: unknown) => (typeof value === "string" ? value : "")
  const aud = claims.aud
  const audiences = Array.isArray(aud) ? aud.map(String) : typeof aud === "string" ? [aud] : []
  if (kubernetes !== undefined) {
    return {
      namespace: text(kubernetes.namespace),
      name: text(kubernetes.serviceaccount?.name),
      uid: text(kubernetes.serviceaccount?.uid),
      audiences
    }
  }
  return {
    namespace: text(claims["kubernetes.io/serviceaccount/namespace"]),
    name: text(claims["kubernetes.io/serviceaccount/service-account.name"]),
    uid: text(claims["kubernetes.io/serviceaccount/service-account.uid"]),
    audiences
  }
}

const bound = (allowed: ReadonlyArray<string>, value: string): boolean =>
  allowed.some((pattern) =>
    pattern === "*" || pattern === value ||
    (pattern.endsWith("*") && value.startsWith(pattern.slice(0, -1)))
  )

interface ReviewedUser {
  readonly namespace: string
  readonly name: string
  readonly uid: string
}

/** Asks the cluster's TokenReview API who `jwt` belongs to; fails with the reason the login is refused. */
const reviewToken = (
  config: KubernetesConfig,
  jwt: string,
  audience: string
): Effect.Effect<ReviewedUser, string> =>
  Effect.async<{ readonly status: number; readonly body: string }, string>((resume) => {
    const base = config.kubernetesHost.replace(/\/+$/, "")
    const url = new URL(`${base}/apis/authentication.k8s.io/v1/tokenreviews`)
    const payload = JSON.stringify({
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token: jwt, ...(audience === "" ? {} : { audiences: [audience] }) }
    })
    const reviewer = config.tokenReviewerJwt !== "" ? config.tokenReviewerJwt : jwt
    const options: Https.RequestOptions = {
      method: "POST",
      headers: {
        "Authorization": `Bearer ${reviewer}`,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Content-Length": Buffer.byteLength(payload)
      },
      timeout: 10_000,
      ...(config.kubernetesCaCert === "" ? {} : { ca: config.kubernetesCaCert })
    }
    const request = (url.protocol === "https:" ? Https : Http).request(url, options, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on(
        "end",
        () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
      )
      response.on("error", (error) => resume(Effect.fail(`reading the TokenReview response failed: ${error.message}`)))
    })
    request.on("timeout", () => request.destroy(new Error("the TokenReview request timed out")))
    request.on("error", (error) => resume(Effect.fail(`the TokenReview request failed: ${error.message}`)))
    request.end(payload)
    return Effect.sync(() => request.destroy())
  }).pipe(
    Effect.flatMap(({ body, status }) => {
      if (status < 200 || status > 299) return Effect.fail(`the TokenReview API answered ${status}`)
      let review: {
        status?: {
          authenticated?: boolean
          user?: { username?: string; uid?: string }
          audiences?: Array<string>
          error?: string
        }
      }
      try {
        review = JSON.parse(body)
      } catch {
        return Effect.fail("the TokenReview API answered with something other than JSON")
      }
      const reviewStatus = review.status ?? {}
      if (reviewStatus.authenticated !== true) {
        return Effect.fail(
          `lookup failed: service account jwt not valid (${reviewStatus.error ?? "not authenticated"})`
        )
      }
      const parts = (reviewStatus.user?.username ?? "").split(":")
      if (parts.length !== 4 || parts[0] !== "system" || parts[1] !== "serviceaccount") {
        return Effect.fail("lookup failed: the token does not belong to a service account")
      }
      if (audience !== "" && !(reviewStatus.audiences ?? []).includes(audience)) {
        return Effect.fail("lookup failed: the token is not valid for the role's audience")
      }
      return Effect.succeed({ namespace: parts[2]!, name: parts[3]!, uid: reviewStatus.user?.uid ?? "" })
    })
  )

const login = (
  state: DevState,
  mount: AuthMount,
  auth: KubernetesAuthState,
  request: DevRequest,
  now: number
): Effect.Effect<DevResponse> =>
  Effect.gen(function*() {
    const roleName = stringField(request.body, "role") ?? ""
    const jwt = stringField(request.body, "jwt") ?? ""
    if (roleName === "") return badRequest("missing role")
    if (jwt === "") return badRequest("missing jwt")
    const role = auth.roles.get(roleName)
    if (role === undefined) return badRequest(`invalid role name ${JSON.stringify(roleName)}`)
    const config = auth.config
    if (config === undefined) return failure(500, "could not load backend configuration")
    const claimed = readClaims(jwt)
    if ("error" in claimed) return badRequest(claimed.error)
    if (!bound(role.boundServiceAccountNamespaces, claimed.namespace)) return failure(403, "namespace not authorized")
    if (!bound(role.boundServiceAccountNames, claimed.name)) {
      return failure(403, "service account name not authorized")
    }
    if (role.audience !== "" && !claimed.audiences.includes(role.audience)) {
      return failure(403, "invalid audience (aud) claim: audience claim does not match any expected audience")
    }
    const reviewed = yield* Effect.either(reviewToken(config, jwt, role.audience))
    if (reviewed._tag === "Left") {
      yield* Effect.logDebug("Kubernetes login refused by the TokenReview").pipe(
        Effect.annotateLogs({ role: roleName, reason: reviewed.left })
      )
      return permissionDenied
    }
    const user = reviewed.right
    // Vault refuses a token whose review names someone other than its own claims.
    if (user.namespace !== claimed.namespace || user.name !== claimed.name) return permissionDenied
    const uid = user.uid !== "" ? user.uid : claimed.uid
    const aliasName = role.aliasNameSource === "serviceaccount_name" ? `${user.namespace}/${user.name}` : uid
    const entityKey = `${mount.accessor}:${aliasName}`
    const entityId = auth.entities.get(entityKey) ?? randomId()
    auth.entities.set(entityKey, entityId)
    const mountDefault = mount.defaultLeaseTtl > 0 ? mount.defaultLeaseTtl : systemMaxTtl
    const maxTtl = Math.min(
      role.tokenMaxTtl > 0 ? role.tokenMaxTtl : systemMaxTtl,
      mount.maxLeaseTtl > 0 ? mount.maxLeaseTtl : systemMaxTtl,
      systemMaxTtl
    )
    const ttl = role.tokenPeriod > 0
      ? role.tokenPeriod
      : Math.min(role.tokenTtl > 0 ? role.tokenTtl : mountDefault, maxTtl)
    const entry = issueToken(state, {
      policies: sanitizePolicies(role.tokenPolicies, !role.tokenNoDefaultPolicy),
      ttl: role.tokenExplicitMaxTtl > 0 ? Math.min(ttl, role.tokenExplicitMaxTtl) : ttl,
      explicitMaxTtl: role.tokenExplicitMaxTtl,
      maxTtl,
      period: role.tokenPeriod,
      renewable: true,
      numUses: role.tokenNumUses,
      displayName: `${mount.path.replace(/\/$/, "")}-${user.namespace}-${user.name}`,
      meta: {
        role: roleName,
        service_account_name: user.name,
        service_account_namespace: user.namespace,
        service_account_secret_name: "",
        service_account_uid: uid
      },
      path: `auth/${mount.path}login`,
      parent: undefined,
      entityId
    }, now)
    return ok({
      auth: { ...authBlock(entry, now), token_policies: entry.policies, identity_policies: null },
      lease_duration: 0,
      mount_type: "kubernetes"
    })
  })

/** Serves `auth/<mount>/<path>` for a Kubernetes auth mount. */
export const serveKubernetesAuth = (
  state: DevState,
  mount: AuthMount,
  path: string,
  request: DevRequest,
  now: number
): Effect.Effect<DevResponse> => {
  const auth = mount.kubernetes
  if (auth === undefined) return Effect.succeed(unsupportedPath)
  if (path === "login") {
    return isWrite(request)
      ? login(state, mount, auth, request, now)
      : Effect.succeed(unsupportedOperation)
  }
  if (path === "config") return Effect.succeed(serveConfig(auth, request))
  if (path === "role" || path.startsWith("role/")) return Effect.succeed(serveRole(auth, path.slice(5), request))
  return Effect.succeed(unsupportedPath)
}
