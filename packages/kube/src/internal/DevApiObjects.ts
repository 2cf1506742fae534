/**
 * Reading and writing the Kubernetes dev API's stored objects: bodies, validation, metadata, Tables, selectors, and
 * create, replace, merge patch and delete with the real API's answers.
 */
import * as Crypto from "node:crypto"
import type { KubeObject, ResourceSpec } from "./DevApiResources.ts"
import { apiVersionOf, findResource, isRefusal, nameProblem } from "./DevApiResources.ts"
import type { ApiRequest, DevApiState } from "./DevApiState.ts"
import { isRecord, ok, timestamp } from "./DevApiState.ts"
import { applyJsonPatch } from "./JsonPatch.ts"
import { decodeKubeProtobuf } from "./KubeProtobuf.ts"
import type { ApiResponse } from "./KubeStatus.ts"
import * as Status from "./KubeStatus.ts"

const serviceAccountSpec = findResource("", "v1", "serviceaccounts")!
const namespaceSpec = findResource("", "v1", "namespaces")!

/** The request body as a JSON object (from JSON or Kubernetes protobuf), or the refusal to answer with. */
export const parseBody = (request: ApiRequest): Record<string, unknown> | ApiResponse => {
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

/** Whether a parsed body is in fact a refusal. */
export const isResponse = (u: unknown): u is ApiResponse =>
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

/** The object with its kind and apiVersion, as single objects are served. */
export const withKind = (spec: ResourceSpec, object: KubeObject) => ({
  kind: spec.kind,
  apiVersion: apiVersionOf(spec),
  ...object
})

/** The object without kind and apiVersion, as list items are served. */
export const withoutKind = (object: KubeObject) => {
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = object
  return rest
}

/** Whether the client asked for the Table form. */
export const wantsTable = (request: ApiRequest) => /as=Table/.test(request.accept)

/** Objects as the `meta.k8s.io/v1` Table `kubectl get` prints. */
export const table = (
  state: DevApiState,
  spec: ResourceSpec,
  objects: ReadonlyArray<KubeObject>,
  nowMillis: number
) => ({
  kind: "Table",
  apiVersion: "meta.k8s.io/v1",
  metadata: { resourceVersion: state.store.currentResourceVersion() },
  columnDefinitions: spec.columns.map((column) => ({
    name: column.name,
    type: column.type,
    format: column.format,
    description: column.description,
    priority: 0
  })),
  rows: objects.map((object) => ({
    cells: spec.columns.map((column) => column.cell(object, nowMillis)),
    object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: object.metadata }
  }))
})

/** Whether an object matches the request's label and field selectors. */
export const matchesSelectors = (object: KubeObject, query: URLSearchParams): boolean => {
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

/** Replaces a stored object, refusing a stale resourceVersion. */
export const replaceObject = (
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

/** Applies a JSON merge patch (strategic merge patches are treated as merge patches) or a JSON patch. */
export const patchObject = (
  state: DevApiState,
  spec: ResourceSpec,
  namespace: string | undefined,
  name: string,
  request: ApiRequest,
  dryRun: boolean
): ApiResponse => {
  const contentType = request.contentType.split(";")[0]!.trim()
  if (contentType === "application/json-patch+json") {
    return jsonPatchObject(state, spec, namespace, name, request, dryRun)
  }
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

const jsonPatchObject = (
  state: DevApiState,
  spec: ResourceSpec,
  namespace: string | undefined,
  name: string,
  request: ApiRequest,
  dryRun: boolean
): ApiResponse => {
  let operations: unknown
  try {
    operations = JSON.parse(Buffer.from(request.body).toString("utf8"))
  } catch {
    return Status.badRequest("the JSON patch could not be decoded as JSON")
  }
  const previous = state.store.get(spec, namespace, name)
  if (previous === undefined) return Status.notFound(spec.resource, spec.group, name)
  const patched = applyJsonPatch(previous, operations)
  if (patched._tag === "Error") {
    return Status.failure(422, "Invalid", `the JSON patch cannot be applied: ${patched.reason}`)
  }
  if (!isRecord(patched.value)) return Status.badRequest("the JSON patch did not leave an object")
  return replaceObject(state, spec, namespace, name, patched.value, dryRun)
}

const protectedNamespaces = new Set(["default", "kube-system", "kube-public"])

/** Deletes an object; a namespace takes everything in it along. */
export const deleteObject = (
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
