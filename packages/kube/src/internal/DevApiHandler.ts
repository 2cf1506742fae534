/**
 * The Kubernetes dev API's request handling: authentication, a minimal authorization, discovery, the stored
 * resources, TokenRequest and TokenReview, each answered with the status codes and JSON shapes of the real API.
 */
import * as Crypto from "node:crypto"
import type { KubeObject, ResourceSpec } from "./DevApiResources.ts"
import { apiVersionOf, findResource, isRefusal, nameProblem, resources } from "./DevApiResources.ts"
import type { DevApiStore } from "./DevApiStore.ts"
import { decodeKubeProtobuf } from "./KubeProtobuf.ts"
import type { ApiResponse } from "./KubeStatus.ts"
import * as Status from "./KubeStatus.ts"
import type { ServiceAccountClaims, TokenAuthority } from "./ServiceAccountTokens.ts"

/** One HTTP request, reduced to what the dev API reads. */
export interface ApiRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly accept: string
  readonly contentType: string
  readonly authorization: string | undefined
  readonly body: Uint8Array
}

/** The state one dev API instance serves from. */
export interface DevApiState {
  readonly store: DevApiStore
  readonly authority: TokenAuthority
  readonly adminToken: string
  /** The audiences the API server accepts tokens for when a review names none. */
  readonly apiAudiences: ReadonlyArray<string>
  /** `host:port` clients reach the server at. */
  readonly serverAddress: string
}

/** Who made a request. */
export interface Principal {
  readonly username: string
  readonly uid: string
  readonly groups: ReadonlyArray<string>
  readonly extra: Record<string, ReadonlyArray<string>>
  readonly serviceAccount?: { readonly namespace: string; readonly name: string }
}

/** The username the admin token authenticates as. */
export const adminUsername = "cloudtaser-dev:admin"

/** The Kubernetes release whose API the dev API follows. */
export const serverVersion = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-cloudtaser-dev",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.23.0",
  compiler: "gc",
  platform: "linux/amd64"
}

const authenticationGroup = "authentication.k8s.io"
const authorizationGroup = "authorization.k8s.io"
const rbacGroup = "rbac.authorization.k8s.io"

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const timestamp = (nowMillis: number) =>
  new Date(Math.floor(nowMillis / 1000) * 1000).toISOString().replace(".000Z", "Z")

const ok = (body: unknown, status = 200): ApiResponse => ({ status, body })

const sameSecret = (a: string, b: string) => {
  const left = Crypto.createHash("sha256").update(a).digest()
  const right = Crypto.createHash("sha256").update(b).digest()
  return Crypto.timingSafeEqual(left, right)
}

const serviceAccountSpec = findResource("", "v1", "serviceaccounts")!
const namespaceSpec = findResource("", "v1", "namespaces")!
const bindingSpec = findResource(rbacGroup, "v1", "clusterrolebindings")!

/** The result of reviewing a token, shaped as a TokenReview's status. */
export type Review =
  | { readonly authenticated: true; readonly principal: Principal; readonly audiences: ReadonlyArray<string> }
  | { readonly authenticated: false; readonly error: string }

const serviceAccountPrincipal = (claims: ServiceAccountClaims): Principal => {
  const { namespace, pod, serviceaccount } = claims["kubernetes.io"]
  return {
    username: `system:serviceaccount:${namespace}:${serviceaccount.name}`,
    uid: serviceaccount.uid,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
    extra: {
      "authentication.kubernetes.io/credential-id": [`JTI=${claims.jti}`],
      ...(pod
        ? { "authentication.kubernetes.io/pod-name": [pod.name], "authentication.kubernetes.io/pod-uid": [pod.uid] }
        : {})
    },
    serviceAccount: { namespace, name: serviceaccount.name }
  }
}

const adminPrincipal: Principal = {
  username: adminUsername,
  uid: "",
  groups: ["system:masters", "system:authenticated"],
  extra: {}
}

const invalidToken = (reason: string): Review => ({ authenticated: false, error: `[invalid bearer token, ${reason}]` })

/** Reviews a bearer token against the given audiences (the API's own when empty), as TokenReview does. */
export const reviewToken = (
  state: DevApiState,
  token: string,
  requested: ReadonlyArray<string>,
  nowMillis: number
): Review => {
  const audiences = requested.length > 0 ? requested : state.apiAudiences
  if (token === "") return invalidToken("the token is empty")
  if (sameSecret(token, state.adminToken)) return { authenticated: true, principal: adminPrincipal, audiences }
  const verification = state.authority.verify(token, nowMillis)
  if (verification._tag === "Invalid") return invalidToken(verification.reason)
  const claims = verification.claims
  const tokenAudiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  const accepted = audiences.filter((audience) => tokenAudiences.includes(audience))
  if (accepted.length === 0) {
    return invalidToken(
      `token audiences ${JSON.stringify(tokenAudiences)} are invalid for the target audiences ${
        JSON.stringify(audiences)
      }`
    )
  }
  const { namespace, serviceaccount } = claims["kubernetes.io"]
  const account = state.store.get(serviceAccountSpec, namespace, serviceaccount.name)
  if (account === undefined) {
    return invalidToken(`service account ${namespace}/${serviceaccount.name} has been deleted`)
  }
  if (account.metadata.uid !== serviceaccount.uid) {
    return invalidToken(
      `service account UID (${serviceaccount.uid}) does not match the current one (${account.metadata.uid})`
    )
  }
  return { authenticated: true, principal: serviceAccountPrincipal(claims), audiences: accepted }
}

interface Attributes {
  readonly verb: string
  readonly resource: string
  readonly group: string
  readonly namespace: string | undefined
  readonly name: string | undefined
}

const boundToClusterAdmin = (state: DevApiState, principal: Principal): boolean =>
  state.store.list(bindingSpec, undefined).some((binding) => {
    const roleRef = binding.roleRef
    if (!isRecord(roleRef) || roleRef.name !== "cluster-admin") return false
    const subjects = Array.isArray(binding.subjects) ? binding.subjects : []
    return subjects.some((subject: unknown) =>
      isRecord(subject) && (
        (subject.kind === "ServiceAccount" && principal.serviceAccount !== undefined &&
          subject.name === principal.serviceAccount.name && subject.namespace === principal.serviceAccount.namespace) ||
        (subject.kind === "User" && subject.name === principal.username) ||
        (subject.kind === "Group" && typeof subject.name === "string" && principal.groups.includes(subject.name))
      )
    )
  })

/**
 * The dev API's authorization: the admin token (group system:masters) may do anything; a service account may review
 * tokens and read itself, and anything else only when a ClusterRoleBinding grants it `cluster-admin`.
 */
const authorize = (state: DevApiState, principal: Principal, attributes: Attributes): boolean => {
  if (principal.groups.includes("system:masters")) return true
  if (attributes.verb === "create" && selfServiceResources.has(attributes.resource)) return true
  const account = principal.serviceAccount
  if (
    account !== undefined && attributes.resource === "serviceaccounts" && attributes.verb === "get" &&
    attributes.namespace === account.namespace && attributes.name === account.name
  ) return true
  return boundToClusterAdmin(state, principal)
}

// What every authenticated user may create: reviews of tokens and of its own identity and permissions.
const selfServiceResources = new Set(["tokenreviews", "selfsubjectreviews", "selfsubjectaccessreviews"])

const discoveryPaths = new Set(["/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openid/v1/jwks"])

const userInfo = (principal: Principal) => ({
  username: principal.username,
  uid: principal.uid,
  groups: principal.groups,
  ...(Object.keys(principal.extra).length > 0 ? { extra: principal.extra } : {})
})

const selfSubjectReview = (principal: Principal): ApiResponse =>
  ok({
    kind: "SelfSubjectReview",
    apiVersion: `${authenticationGroup}/v1`,
    metadata: { creationTimestamp: null },
    status: { userInfo: userInfo(principal) }
  }, 201)

const selfSubjectAccessReview = (state: DevApiState, principal: Principal, request: ApiRequest): ApiResponse => {
  const body = parseBody(request)
  if (isResponse(body)) return body
  const spec = isRecord(body.spec) ? body.spec : {}
  const text = (u: unknown) => typeof u === "string" && u !== "" ? u : undefined
  let allowed: boolean
  if (isRecord(spec.resourceAttributes)) {
    const attributes = spec.resourceAttributes
    const resource = text(attributes.resource) ?? ""
    const subresource = text(attributes.subresource)
    allowed = authorize(state, principal, {
      verb: text(attributes.verb) ?? "",
      resource: subresource === undefined ? resource : `${resource}/${subresource}`,
      group: text(attributes.group) ?? "",
      namespace: text(attributes.namespace),
      name: text(attributes.name)
    })
  } else if (isRecord(spec.nonResourceAttributes)) {
    const path = text(spec.nonResourceAttributes.path) ?? ""
    allowed = principal.groups.includes("system:masters") ||
      (spec.nonResourceAttributes.verb === "get" &&
        (discoveryPaths.has(path) || path.startsWith("/api/") || path.startsWith("/apis/")))
  } else {
    return Status.invalid(
      "SelfSubjectAccessReview",
      authorizationGroup,
      "",
      "spec.resourceAttributes",
      "exactly one of nonResourceAttributes or resourceAttributes must be specified"
    )
  }
  return ok({
    kind: "SelfSubjectAccessReview",
    apiVersion: `${authorizationGroup}/v1`,
    metadata: { creationTimestamp: null },
    spec,
    status: allowed ? { allowed: true, reason: "allowed by the dev API's authorization" } : { allowed: false }
  }, 201)
}

const authenticate = (state: DevApiState, request: ApiRequest, nowMillis: number): Principal | undefined => {
  const header = request.authorization ?? ""
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) return undefined
  const review = reviewToken(state, match[1]!, [], nowMillis)
  return review.authenticated ? review.principal : undefined
}

// Discovery documents.

const groupVersions = (): Array<{ readonly group: string; readonly version: string }> => {
  const seen = new Map<string, { group: string; version: string }>()
  for (const spec of resources) {
    if (spec.group !== "") seen.set(`${spec.group}/${spec.version}`, { group: spec.group, version: spec.version })
  }
  seen.set(`${authenticationGroup}/v1`, { group: authenticationGroup, version: "v1" })
  seen.set(`${authorizationGroup}/v1`, { group: authorizationGroup, version: "v1" })
  return Array.from(seen.values()).sort((a, b) => a.group.localeCompare(b.group))
}

const apiGroup = (group: string) => {
  const versions = groupVersions().filter((entry) => entry.group === group).map((entry) => ({
    groupVersion: `${group}/${entry.version}`,
    version: entry.version
  }))
  return versions.length === 0 ? undefined : { name: group, versions, preferredVersion: versions[0] }
}

const resourceList = (group: string, version: string) => {
  const groupVersion = group === "" ? version : `${group}/${version}`
  const listed: Array<Record<string, unknown>> = resources
    .filter((spec) => spec.group === group && spec.version === version)
    .map((spec) => ({
      name: spec.resource,
      singularName: spec.singular,
      namespaced: spec.namespaced,
      kind: spec.kind,
      verbs: spec.verbs,
      ...(spec.shortNames.length > 0 ? { shortNames: spec.shortNames } : {})
    }))
  if (group === "" && version === "v1") {
    listed.push({
      name: "serviceaccounts/token",
      singularName: "",
      namespaced: true,
      group: authenticationGroup,
      version: "v1",
      kind: "TokenRequest",
      verbs: ["create"]
    })
  }
  if (group === authenticationGroup && version === "v1") {
    listed.push(
      { name: "tokenreviews", singularName: "tokenreview", namespaced: false, kind: "TokenReview", verbs: ["create"] },
      {
        name: "selfsubjectreviews",
        singularName: "selfsubjectreview",
        namespaced: false,
        kind: "SelfSubjectReview",
        verbs: ["create"]
      }
    )
  }
  if (group === authorizationGroup && version === "v1") {
    listed.push({
      name: "selfsubjectaccessreviews",
      singularName: "selfsubjectaccessreview",
      namespaced: false,
      kind: "SelfSubjectAccessReview",
      verbs: ["create"]
    })
  }
  if (listed.length === 0) return undefined
  listed.sort((a, b) => String(a.name).localeCompare(String(b.name)))
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources: listed }
}

const discovery = (state: DevApiState, segments: ReadonlyArray<string>): ApiResponse | undefined => {
  const path = segments.join("/")
  if (path === "version") return ok(serverVersion)
  if (path === "api") {
    return ok({
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: state.serverAddress }]
    })
  }
  if (path === "apis") {
    const groups = Array.from(new Set(groupVersions().map((entry) => entry.group))).map(apiGroup)
    return ok({ kind: "APIGroupList", apiVersion: "v1", groups })
  }
  if (segments[0] === "apis" && segments.length === 2) {
    const group = apiGroup(segments[1]!)
    return group === undefined ? undefined : ok({ kind: "APIGroup", apiVersion: "v1", ...group })
  }
  if (path === "api/v1") return ok(resourceList("", "v1"))
  if (segments[0] === "apis" && segments.length === 3) {
    const list = resourceList(segments[1]!, segments[2]!)
    return list === undefined ? undefined : ok(list)
  }
  if (path === ".well-known/openid-configuration") {
    return ok({
      issuer: state.authority.issuer,
      jwks_uri: `https://${state.serverAddress}/openid/v1/jwks`,
      response_types_supported: ["id_token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["ES256"]
    })
  }
  if (path === "openid/v1/jwks") return ok({ keys: [state.authority.publicJwk] })
  if (path === "healthz" || path === "livez" || path === "readyz") return ok("ok")
  return undefined
}

// Reading and writing stored objects.

const parseBody = (request: ApiRequest): Record<string, unknown> | ApiResponse => {
  const contentType = request.contentType.split(";")[0]!.trim().toLowerCase()
  if (contentType === "application/vnd.kubernetes.protobuf") {
    const decoded = decodeKubeProtobuf(request.body)
    if (decoded._tag === "Error") return Status.badRequest(`the protobuf body could not be read: ${decoded.reason}`)
    return decoded.object
  }
  if (contentType !== "" && contentType !== "application/json" && !contentType.endsWith("+json")) {
    return Status.unsupportedMediaType(contentType)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(request.body).toString("utf8"))
  } catch (error) {
    return Status.badRequest(
      `the body of the request could not be decoded as JSON: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  if (!isRecord(parsed)) return Status.badRequest("the body of the request must be a JSON object")
  return parsed
}

const isResponse = (u: unknown): u is ApiResponse =>
  isRecord(u) && typeof u.status === "number" && "body" in u && Object.keys(u).length === 2

const checkKind = (spec: ResourceSpec, body: Record<string, unknown>): ApiResponse | undefined => {
  if (body.kind !== undefined && body.kind !== spec.kind) {
    return Status.badRequest(`the kind of the object (${String(body.kind)}) does not match the resource (${spec.kind})`)
  }
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(spec)) {
    return Status.badRequest(
      `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${
        apiVersionOf(spec)
      })`
    )
  }
  return undefined
}

const withKind = (spec: ResourceSpec, object: KubeObject) => ({
  kind: spec.kind,
  apiVersion: apiVersionOf(spec),
  ...object
})

const withoutKind = (object: KubeObject) => {
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = object
  return rest
}

const wantsTable = (request: ApiRequest) => /as=Table/.test(request.accept)

const table = (state: DevApiState, spec: ResourceSpec, objects: ReadonlyArray<KubeObject>, nowMillis: number) => ({
  kind: "Table",
  apiVersion: "meta.k8s.io/v1",
  metadata: { resourceVersion: state.store.currentResourceVersion() },
  columnDefinitions: spec.columns.map((column, index) => ({
    name: column.name,
    type: column.type,
    format: column.format,
    description: column.description,
    priority: index === 0 ? 0 : 0
  })),
  rows: objects.map((object) => ({
    cells: spec.columns.map((column) => column.cell(object, nowMillis)),
    object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: object.metadata }
  }))
})

const matchesSelectors = (object: KubeObject, query: URLSearchParams): boolean => {
  const labels = object.metadata.labels ?? {}
  const labelSelector = query.get("labelSelector") ?? ""
  for (const term of labelSelector.split(",").map((t) => t.trim()).filter((t) => t !== "")) {
    const unequal = /^([^!=]+)!=(.*)$/.exec(term)
    const equal = /^([^!=]+)==?(.*)$/.exec(term)
    if (unequal) {
      if (labels[unequal[1]!.trim()] === unequal[2]!.trim()) return false
    } else if (equal) {
      if (labels[equal[1]!.trim()] !== equal[2]!.trim()) return false
    } else if (term.startsWith("!")) {
      if (term.slice(1).trim() in labels) return false
    } else if (!(term in labels)) return false
  }
  const fieldSelector = query.get("fieldSelector") ?? ""
  for (const term of fieldSelector.split(",").map((t) => t.trim()).filter((t) => t !== "")) {
    const match = /^([^!=]+)(!=|==|=)(.*)$/.exec(term)
    if (match === null) continue
    const actual = match[1] === "metadata.name"
      ? object.metadata.name
      : match[1] === "metadata.namespace"
      ? object.metadata.namespace
      : undefined
    if ((match[2] === "!=") === (actual === match[3])) return false
  }
  return true
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"
const randomSuffix = () =>
  Array.from(Crypto.randomBytes(5), (byte) => nameAlphabet[byte % nameAlphabet.length]).join("")

const isStringMap = (u: unknown) => isRecord(u) && Object.values(u).every((value) => typeof value === "string")

const checkMetadata = (
  spec: ResourceSpec,
  name: string,
  metadata: Record<string, unknown>
): ApiResponse | undefined => {
  for (const field of ["labels", "annotations"] as const) {
    if (metadata[field] !== undefined && metadata[field] !== null && !isStringMap(metadata[field])) {
      return Status.invalid(spec.kind, spec.group, name, `metadata.${field}`, "must be a map of strings")
    }
  }
  return undefined
}

const metadataOf = (body: Record<string, unknown>): Record<string, unknown> =>
  isRecord(body.metadata) ? body.metadata : {}

/** Stores a new object, completing its metadata; used by POST and by the dev API's own fixtures. */
export const createObject = (
  state: DevApiState,
  spec: ResourceSpec,
  namespace: string | undefined,
  body: Record<string, unknown>,
  nowMillis: number,
  dryRun = false
): ApiResponse => {
  const kindProblem = checkKind(spec, body)
  if (kindProblem) return kindProblem
  const metadata = metadataOf(body)
  if (
    spec.namespaced && typeof metadata.namespace === "string" && metadata.namespace !== "" &&
    metadata.namespace !== namespace
  ) {
    return Status.badRequest("the namespace of the provided object does not match the namespace sent on the request")
  }
  const generateName = typeof metadata.generateName === "string" ? metadata.generateName : ""
  const name = typeof metadata.name === "string" && metadata.name !== ""
    ? metadata.name
    : generateName !== ""
    ? generateName + randomSuffix()
    : ""
  if (name === "") {
    return Status.invalid(
      spec.kind,
      spec.group,
      "",
      "metadata.name",
      "Required value: name or generateName is required"
    )
  }
  const problem = nameProblem(spec, name)
  if (problem !== undefined) {
    return Status.invalid(spec.kind, spec.group, name, "metadata.name", `Invalid value: "${name}": ${problem}`)
  }
  const metadataProblem = checkMetadata(spec, name, metadata)
  if (metadataProblem) return metadataProblem
  if (spec.namespaced) {
    const owner = state.store.get(namespaceSpec, undefined, namespace!)
    if (owner === undefined) return Status.notFound("namespaces", "", namespace!)
  }
  if (state.store.get(spec, namespace, name) !== undefined) return Status.alreadyExists(spec.resource, spec.group, name)
  const prepared = spec.prepare({ ...body, metadata: { ...metadata, name } }, undefined)
  if (isRefusal(prepared)) return prepared
  const {
    creationTimestamp: _c,
    deletionTimestamp: _d,
    generateName: _g,
    managedFields: _m,
    resourceVersion: _r,
    uid: _u,
    ...kept
  } = metadataOf(prepared)
  const object: KubeObject = {
    ...prepared,
    metadata: {
      ...kept,
      name,
      ...(generateName !== "" ? { generateName } : {}),
      ...(spec.namespaced ? { namespace: namespace! } : {}),
      uid: Crypto.randomUUID(),
      resourceVersion: dryRun ? state.store.currentResourceVersion() : state.store.nextResourceVersion(),
      creationTimestamp: timestamp(nowMillis)
    }
  }
  const stored = withKind(spec, object)
  if (!dryRun) {
    state.store.put(spec, stored)
    if (spec === namespaceSpec) {
      createObject(state, serviceAccountSpec, name, { metadata: { name: "default" } }, nowMillis)
    }
  }
  return ok(stored, 201)
}

const replaceObject = (
  state: DevApiState,
  spec: ResourceSpec,
  namespace: string | undefined,
  name: string,
  body: Record<string, unknown>,
  dryRun: boolean
): ApiResponse => {
  const kindProblem = checkKind(spec, body)
  if (kindProblem) return kindProblem
  const metadata = metadataOf(body)
  if (metadata.name !== undefined && metadata.name !== name) {
    return Status.badRequest(
      `the name of the object (${String(metadata.name)}) does not match the name on the URL (${name})`
    )
  }
  if (
    spec.namespaced && typeof metadata.namespace === "string" && metadata.namespace !== "" &&
    metadata.namespace !== namespace
  ) {
    return Status.badRequest("the namespace of the provided object does not match the namespace sent on the request")
  }
  const previous = state.store.get(spec, namespace, name)
  if (previous === undefined) return Status.notFound(spec.resource, spec.group, name)
  if (
    typeof metadata.resourceVersion === "string" && metadata.resourceVersion !== "" &&
    metadata.resourceVersion !== previous.metadata.resourceVersion
  ) return Status.conflict(spec.resource, spec.group, name)
  const metadataProblem = checkMetadata(spec, name, metadata)
  if (metadataProblem) return metadataProblem
  const prepared = spec.prepare({ ...body, metadata: { ...metadata, name } }, previous)
  if (isRefusal(prepared)) return prepared
  const object: KubeObject = {
    ...prepared,
    metadata: {
      ...metadataOf(prepared),
      name,
      ...(spec.namespaced ? { namespace: namespace! } : {}),
      uid: previous.metadata.uid,
      resourceVersion: dryRun ? previous.metadata.resourceVersion : state.store.nextResourceVersion(),
      creationTimestamp: previous.metadata.creationTimestamp
    }
  }
  const stored = withKind(spec, object)
  if (!dryRun) state.store.put(spec, stored)
  return ok(stored)
}

const mergePatch = (target: unknown, patch: unknown): unknown => {
  if (!isRecord(patch)) return patch
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key]
    else out[key] = mergePatch(out[key], value)
  }
  return out
}

const patchObject = (
  state: DevApiState,
  spec: ResourceSpec,
  namespace: string | undefined,
  name: string,
  request: ApiRequest,
  dryRun: boolean
): ApiResponse => {
  const contentType = request.contentType.split(";")[0]!.trim()
  if (contentType !== "application/merge-patch+json" && contentType !== "application/strategic-merge-patch+json") {
    return Status.unsupportedMediaType(contentType)
  }
  const patch = parseBody(request)
  if (isResponse(patch)) return patch
  const previous = state.store.get(spec, namespace, name)
  if (previous === undefined) return Status.notFound(spec.resource, spec.group, name)
  const merged = mergePatch(previous, patch) as Record<string, unknown>
  const previousVersion = previous.metadata.resourceVersion
  const patchedMeta = metadataOf(merged)
  const patchVersion = isRecord(patch.metadata) ? patch.metadata.resourceVersion : undefined
  return replaceObject(
    state,
    spec,
    namespace,
    name,
    { ...merged, metadata: { ...patchedMeta, resourceVersion: patchVersion ?? previousVersion } },
    dryRun
  )
}

const protectedNamespaces = new Set(["default", "kube-system", "kube-public"])

const deleteObject = (
  state: DevApiState,
  spec: ResourceSpec,
  namespace: string | undefined,
  name: string,
  dryRun: boolean
): ApiResponse => {
  const previous = state.store.get(spec, namespace, name)
  if (previous === undefined) return Status.notFound(spec.resource, spec.group, name)
  if (spec === namespaceSpec) {
    if (protectedNamespaces.has(name)) {
      return Status.failure(403, "Forbidden", `namespaces "${name}" is forbidden: this namespace may not be deleted`, {
        name,
        kind: "namespaces"
      })
    }
    if (!dryRun) {
      state.store.removeNamespaced(name)
      state.store.remove(spec, undefined, name)
    }
    return ok({ ...previous, status: { phase: "Terminating" } })
  }
  if (!dryRun) state.store.remove(spec, namespace, name)
  return Status.deleted(spec.resource, spec.group, name, previous.metadata.uid)
}

// TokenRequest and TokenReview.

const maxExpirationSeconds = 2 ** 32

const tokenRequest = (
  state: DevApiState,
  namespace: string,
  name: string,
  request: ApiRequest,
  nowMillis: number
): ApiResponse => {
  const body = parseBody(request)
  if (isResponse(body)) return body
  if (
    (body.kind !== undefined && body.kind !== "TokenRequest") ||
    (body.apiVersion !== undefined && body.apiVersion !== `${authenticationGroup}/v1`)
  ) return Status.badRequest("the body of a token request must be an authentication.k8s.io/v1 TokenRequest")
  const spec = isRecord(body.spec) ? body.spec : {}
  const expirationSeconds = spec.expirationSeconds ?? 3600
  if (typeof expirationSeconds !== "number" || !Number.isInteger(expirationSeconds)) {
    return Status.invalid("TokenRequest", authenticationGroup, name, "spec.expirationSeconds", "must be an integer")
  }
  if (expirationSeconds < 600) {
    return Status.invalid(
      "TokenRequest",
      authenticationGroup,
      name,
      "spec.expirationSeconds",
      `Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes`
    )
  }
  if (expirationSeconds > maxExpirationSeconds) {
    return Status.invalid(
      "TokenRequest",
      authenticationGroup,
      name,
      "spec.expirationSeconds",
      `Invalid value: ${expirationSeconds}: may not specify a duration larger than 2^32 seconds`
    )
  }
  const requested = Array.isArray(spec.audiences)
    ? spec.audiences.filter((a): a is string => typeof a === "string" && a !== "")
    : []
  const audiences = requested.length > 0 ? requested : state.apiAudiences
  const account = state.store.get(serviceAccountSpec, namespace, name)
  if (account === undefined) return Status.notFound("serviceaccounts", "", name)
  const bound = isRecord(spec.boundObjectRef) ? spec.boundObjectRef : undefined
  const pod = bound !== undefined && bound.kind === "Pod" && typeof bound.name === "string"
    ? { name: bound.name, uid: typeof bound.uid === "string" ? bound.uid : Crypto.randomUUID() }
    : undefined
  const issued = state.authority.issue(
    {
      namespace,
      serviceAccount: name,
      serviceAccountUid: account.metadata.uid,
      audiences,
      expirationSeconds,
      pod
    },
    nowMillis
  )
  return ok({
    kind: "TokenRequest",
    apiVersion: `${authenticationGroup}/v1`,
    metadata: { name, namespace, creationTimestamp: null },
    spec: { audiences, expirationSeconds, boundObjectRef: bound ?? null },
    status: { token: issued.token, expirationTimestamp: timestamp(issued.expiresAt) }
  }, 201)
}

const tokenReview = (state: DevApiState, request: ApiRequest, nowMillis: number): ApiResponse => {
  const body = parseBody(request)
  if (isResponse(body)) return body
  if (
    (body.kind !== undefined && body.kind !== "TokenReview") ||
    (body.apiVersion !== undefined && body.apiVersion !== `${authenticationGroup}/v1`)
  ) return Status.badRequest("the body of a token review must be an authentication.k8s.io/v1 TokenReview")
  const spec = isRecord(body.spec) ? body.spec : {}
  const token = typeof spec.token === "string" ? spec.token : ""
  const audiences = Array.isArray(spec.audiences)
    ? spec.audiences.filter((a): a is string => typeof a === "string")
    : []
  const review = reviewToken(state, token, audiences, nowMillis)
  const status = review.authenticated
    ? {
      authenticated: true,
      user: userInfo(review.principal),
      audiences: review.audiences
    }
    : { authenticated: false, user: {}, error: review.error }
  return ok({
    kind: "TokenReview",
    apiVersion: `${authenticationGroup}/v1`,
    metadata: { creationTimestamp: null },
    spec,
    status
  }, 201)
}

// Routing.

type Target =
  | { readonly _tag: "Collection"; readonly spec: ResourceSpec; readonly namespace: string | undefined }
  | {
    readonly _tag: "Object"
    readonly spec: ResourceSpec
    readonly namespace: string | undefined
    readonly name: string
  }
  | { readonly _tag: "TokenRequest"; readonly namespace: string; readonly name: string }
  | { readonly _tag: "TokenReview" }
  | { readonly _tag: "SelfSubjectReview" }
  | { readonly _tag: "SelfSubjectAccessReview" }

const resolve = (segments: ReadonlyArray<string>): Target | undefined => {
  let group: string
  let version: string
  let rest: ReadonlyArray<string>
  if (segments[0] === "api" && segments[1] === "v1") {
    group = ""
    version = "v1"
    rest = segments.slice(2)
  } else if (segments[0] === "apis" && segments.length > 3) {
    group = segments[1]!
    version = segments[2]!
    rest = segments.slice(3)
  } else return undefined
  if (group === authenticationGroup && version === "v1") {
    if (rest.length !== 1) return undefined
    return rest[0] === "tokenreviews"
      ? { _tag: "TokenReview" }
      : rest[0] === "selfsubjectreviews"
      ? { _tag: "SelfSubjectReview" }
      : undefined
  }
  if (group === authorizationGroup && version === "v1") {
    return rest.length === 1 && rest[0] === "selfsubjectaccessreviews" ? { _tag: "SelfSubjectAccessReview" } : undefined
  }
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const namespace = rest[1]!
    if (rest.length === 5 && rest[2] === "serviceaccounts" && rest[4] === "token" && group === "") {
      return { _tag: "TokenRequest", namespace, name: rest[3]! }
    }
    const spec = findResource(group, version, rest[2]!)
    if (spec === undefined || !spec.namespaced) return undefined
    if (rest.length === 3) return { _tag: "Collection", spec, namespace }
    if (rest.length === 4) return { _tag: "Object", spec, namespace, name: rest[3]! }
    return undefined
  }
  const spec = findResource(group, version, rest[0]!)
  if (spec === undefined) return undefined
  if (rest.length === 1) return { _tag: "Collection", spec, namespace: undefined }
  if (rest.length === 2 && !spec.namespaced) return { _tag: "Object", spec, namespace: undefined, name: rest[1]! }
  return undefined
}

const verbOf = (method: string, target: Target, watching: boolean): string | undefined => {
  switch (method) {
    case "GET":
      return target._tag === "Collection"
        ? (watching ? "watch" : "list")
        : target._tag === "Object" && !watching
        ? "get"
        : undefined
    case "POST":
      return target._tag === "Object" ? undefined : "create"
    case "PUT":
      return target._tag === "Object" ? "update" : undefined
    case "PATCH":
      return target._tag === "Object" ? "patch" : undefined
    case "DELETE":
      return target._tag === "Object" ? "delete" : undefined
    default:
      return undefined
  }
}

const attributesOf = (verb: string, target: Target): Attributes => {
  switch (target._tag) {
    case "TokenReview":
      return { verb, resource: "tokenreviews", group: authenticationGroup, namespace: undefined, name: undefined }
    case "SelfSubjectReview":
      return { verb, resource: "selfsubjectreviews", group: authenticationGroup, namespace: undefined, name: undefined }
    case "SelfSubjectAccessReview":
      return {
        verb,
        resource: "selfsubjectaccessreviews",
        group: authorizationGroup,
        namespace: undefined,
        name: undefined
      }
    case "TokenRequest":
      return { verb, resource: "serviceaccounts/token", group: "", namespace: target.namespace, name: target.name }
    case "Collection":
      return {
        verb,
        resource: target.spec.resource,
        group: target.spec.group,
        namespace: target.namespace,
        name: undefined
      }
    case "Object":
      return {
        verb,
        resource: target.spec.resource,
        group: target.spec.group,
        namespace: target.spec.resource === "namespaces" ? target.name : target.namespace,
        name: target.name
      }
  }
}

const decodeSegments = (path: string): ReadonlyArray<string> | undefined => {
  try {
    return path.split("/").filter((segment) => segment !== "").map(decodeURIComponent)
  } catch {
    return undefined
  }
}

/** What a watch request asks to be told about; the server streams it as JSON lines. */
export interface Watch {
  readonly spec: ResourceSpec
  readonly namespace: string | undefined
  readonly query: URLSearchParams
  readonly table: boolean
  /** Changes after this resourceVersion come first; without one, ADDED events for what exists now do. */
  readonly since: number | undefined
  readonly timeoutSeconds: number | undefined
}

/** The answer to a watch request: the server turns it into a stream of events. */
export interface WatchResponse extends ApiResponse {
  readonly watch: Watch
}

const startWatch = (
  spec: ResourceSpec,
  namespace: string | undefined,
  request: ApiRequest
): WatchResponse => {
  const since = Number(request.query.get("resourceVersion") || "0")
  const timeout = Number(request.query.get("timeoutSeconds") ?? "")
  return {
    status: 200,
    body: undefined,
    watch: {
      spec,
      namespace,
      query: request.query,
      table: wantsTable(request),
      since: Number.isInteger(since) && since > 0 ? since : undefined,
      timeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined
    }
  }
}

/** One watch event as the JSON line the API server streams, or undefined when the watch does not cover it. */
export const watchEventLine = (
  state: DevApiState,
  watch: Watch,
  event: { readonly type: string; readonly spec: ResourceSpec; readonly object: KubeObject },
  nowMillis: number
): string | undefined => {
  if (event.spec !== watch.spec) return undefined
  if (watch.namespace !== undefined && event.object.metadata.namespace !== watch.namespace) return undefined
  if (!matchesSelectors(event.object, watch.query)) return undefined
  const object = watch.table ? table(state, watch.spec, [event.object], nowMillis) : event.object
  return `${JSON.stringify({ type: event.type, object })}\n`
}

/**
 * The lines a watch starts with: the remembered changes after its resourceVersion, or ADDED for every object when it
 * has none; an ERROR with a 410 Expired Status when those changes are no longer remembered.
 */
export const watchBacklog = (state: DevApiState, watch: Watch, nowMillis: number): ReadonlyArray<string> => {
  const events = watch.since === undefined
    ? state.store.list(watch.spec, watch.namespace).map((object) => ({ type: "ADDED", spec: watch.spec, object }))
    : state.store.changesSince(watch.since)
  if (events === undefined) {
    const expired = Status.failure(
      410,
      "Expired",
      `too old resource version: ${watch.since} (${state.store.currentResourceVersion()})`
    )
    return [`${JSON.stringify({ type: "ERROR", object: expired.body })}\n`]
  }
  return events.flatMap((event) => watchEventLine(state, watch, event, nowMillis) ?? [])
}

/** Whether a response is a watch to stream. */
export const isWatch = (response: ApiResponse): response is WatchResponse => "watch" in response

/** Answers one request as the dev API, at the given time. */
export const handle = (state: DevApiState, request: ApiRequest, nowMillis: number): ApiResponse => {
  const principal = authenticate(state, request, nowMillis)
  if (principal === undefined) return Status.unauthorized()
  const segments = decodeSegments(request.path)
  if (segments === undefined) return Status.badRequest("the request path is not valid percent-encoding")
  if (request.method === "GET") {
    const document = discovery(state, segments)
    if (document !== undefined) return document
  }
  const target = resolve(segments)
  if (target === undefined) return Status.unknownPath()
  const watching = ["true", "1"].includes(request.query.get("watch") ?? "")
  const verb = verbOf(request.method, target, watching)
  if (verb === undefined) return Status.methodNotAllowed()
  const attributes = attributesOf(verb, target)
  if (!authorize(state, principal, attributes)) {
    return Status.forbidden(
      principal.username,
      verb,
      attributes.resource,
      attributes.group,
      attributes.namespace,
      attributes.name
    )
  }
  const dryRun = request.query.getAll("dryRun").includes("All")
  switch (target._tag) {
    case "TokenReview":
      return tokenReview(state, request, nowMillis)
    case "SelfSubjectReview":
      return selfSubjectReview(principal)
    case "SelfSubjectAccessReview":
      return selfSubjectAccessReview(state, principal, request)
    case "TokenRequest":
      return tokenRequest(state, target.namespace, target.name, request, nowMillis)
    case "Collection": {
      if (verb === "watch") return startWatch(target.spec, target.namespace, request)
      if (verb === "list") {
        const objects = state.store.list(target.spec, target.namespace).filter((o) =>
          matchesSelectors(o, request.query)
        )
        if (wantsTable(request)) return ok(table(state, target.spec, objects, nowMillis))
        return ok({
          kind: `${target.spec.kind}List`,
          apiVersion: apiVersionOf(target.spec),
          metadata: { resourceVersion: state.store.currentResourceVersion() },
          items: objects.map(withoutKind)
        })
      }
      if (target.spec.namespaced && target.namespace === undefined) return Status.methodNotAllowed()
      const body = parseBody(request)
      if (isResponse(body)) return body
      return createObject(state, target.spec, target.namespace, body, nowMillis, dryRun)
    }
    case "Object": {
      const { name, namespace, spec } = target
      switch (verb) {
        case "get": {
          const object = state.store.get(spec, namespace, name)
          if (object === undefined) return Status.notFound(spec.resource, spec.group, name)
          return ok(wantsTable(request) ? table(state, spec, [object], nowMillis) : object)
        }
        case "update": {
          const body = parseBody(request)
          if (isResponse(body)) return body
          return replaceObject(state, spec, namespace, name, body, dryRun)
        }
        case "patch":
          return patchObject(state, spec, namespace, name, request, dryRun)
        default:
          return deleteObject(state, spec, namespace, name, dryRun)
      }
    }
  }
}

/** Stores the namespaces every cluster starts with, each with its `default` service account. */
export const seed = (state: DevApiState, nowMillis: number): void => {
  for (const name of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
    createObject(state, namespaceSpec, undefined, { metadata: { name } }, nowMillis)
  }
}

/**
 * Issues a token for a service account as TokenRequest does, creating the namespace and the account first when they
 * do not exist yet (the dev API's fixture for tests).
 */
export const issueServiceAccountToken = (
  state: DevApiState,
  grant: {
    readonly namespace: string
    readonly serviceAccount: string
    readonly audiences?: ReadonlyArray<string> | undefined
    readonly expirationSeconds?: number | undefined
    readonly pod?: { readonly name: string; readonly uid: string } | undefined
  },
  nowMillis: number
): string => {
  if (state.store.get(namespaceSpec, undefined, grant.namespace) === undefined) {
    createObject(state, namespaceSpec, undefined, { metadata: { name: grant.namespace } }, nowMillis)
  }
  let account = state.store.get(serviceAccountSpec, grant.namespace, grant.serviceAccount)
  if (account === undefined) {
    createObject(state, serviceAccountSpec, grant.namespace, { metadata: { name: grant.serviceAccount } }, nowMillis)
    account = state.store.get(serviceAccountSpec, grant.namespace, grant.serviceAccount)!
  }
  return state.authority.issue({
    namespace: grant.namespace,
    serviceAccount: grant.serviceAccount,
    serviceAccountUid: account.metadata.uid,
    audiences: grant.audiences !== undefined && grant.audiences.length > 0 ? grant.audiences : state.apiAudiences,
    expirationSeconds: grant.expirationSeconds ?? 3600,
    pod: grant.pod
  }, nowMillis).token
}
