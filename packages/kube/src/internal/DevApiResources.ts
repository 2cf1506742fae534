/**
 * The kinds of object the Kubernetes dev API stores: where each lives, how it is checked and completed on write, and
 * the columns `kubectl get` shows for it.
 */
import type { ApiResponse } from "./KubeStatus.ts"
import * as Status from "./KubeStatus.ts"

/** A stored object: its metadata and whatever else its kind carries. */
export interface KubeObject {
  readonly metadata: ObjectMeta
  readonly [key: string]: unknown
}

/** The metadata fields the dev API reads and sets. */
export interface ObjectMeta {
  readonly name: string
  readonly namespace?: string
  readonly uid: string
  readonly resourceVersion: string
  readonly creationTimestamp: string
  readonly labels?: Record<string, string>
  readonly annotations?: Record<string, string>
  readonly [key: string]: unknown
}

/** One column of a `meta.k8s.io/v1` Table. */
export interface Column {
  readonly name: string
  readonly type: string
  readonly format: string
  readonly description: string
  readonly cell: (object: KubeObject, nowMillis: number) => unknown
}

/** How the dev API serves one resource. */
export interface ResourceSpec {
  readonly resource: string
  readonly singular: string
  readonly kind: string
  readonly group: string
  readonly version: string
  readonly namespaced: boolean
  readonly shortNames: ReadonlyArray<string>
  readonly verbs: ReadonlyArray<string>
  /** Checks a written body and completes it (defaults, encodings); `previous` is set on update. */
  readonly prepare: (
    body: Record<string, unknown>,
    previous: KubeObject | undefined
  ) => Record<string, unknown> | ApiResponse
  readonly columns: ReadonlyArray<Column>
}

/** `group/version`, or just `version` for the core group. */
export const apiVersionOf = (spec: ResourceSpec): string =>
  spec.group === "" ? spec.version : `${spec.group}/${spec.version}`

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const isResponse = (u: unknown): u is ApiResponse => isRecord(u) && typeof u.status === "number" && "body" in u

/** Whether `prepare` refused the body. */
export const isRefusal = (u: Record<string, unknown> | ApiResponse): u is ApiResponse => isResponse(u)

/** A Kubernetes duration as `kubectl get` prints it in the AGE column. */
export const humanAge = (creationTimestamp: string, nowMillis: number): string => {
  const created = Date.parse(creationTimestamp)
  if (Number.isNaN(created)) return "<unknown>"
  const seconds = Math.max(0, Math.floor((nowMillis - created) / 1000))
  if (seconds < 120) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 10) return `${minutes}m${seconds % 60}s`
  if (minutes < 180) return `${minutes}m`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours}h`
  return `${Math.floor(hours / 24)}d`
}

const nameColumn: Column = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name must be unique within a namespace.",
  cell: (object) => object.metadata.name
}

const ageColumn: Column = {
  name: "Age",
  type: "string",
  format: "",
  description: "The time since the object was created.",
  cell: (object, now) => humanAge(object.metadata.creationTimestamp, now)
}

const countOf = (u: unknown): number => (isRecord(u) ? Object.keys(u).length : 0)

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const dataKey = /^[-._a-zA-Z0-9]+$/
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Checks an object name the way the API server does for the kind; `undefined` when it is acceptable. */
export const nameProblem = (spec: ResourceSpec, name: string): string | undefined => {
  if (spec.resource === "namespaces") {
    return name.length <= 63 && dnsLabel.test(name)
      ? undefined
      : "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and " +
        "end with an alphanumeric character"
  }
  if (spec.resource === "clusterrolebindings") {
    return name === "." || name === ".." || /[/%]/.test(name)
      ? "may not contain '/' or '%' or be '.' or '..'"
      : undefined
  }
  return name.length <= 253 && dnsSubdomain.test(name)
    ? undefined
    : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must " +
      "start and end with an alphanumeric character"
}

const stringMap = (
  spec: ResourceSpec,
  name: string,
  field: string,
  value: unknown,
  check: (key: string, item: string) => string | undefined
): Record<string, string> | ApiResponse => {
  if (value === undefined || value === null) return {}
  if (!isRecord(value)) return Status.invalid(spec.kind, spec.group, name, field, "must be a map of strings")
  const out: Record<string, string> = {}
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") {
      return Status.invalid(spec.kind, spec.group, name, `${field}[${key}]`, "must be a string")
    }
    const problem = dataKey.test(key) ? check(key, item) : "a valid config key must consist of alphanumeric " +
      "characters, '-', '_' or '.'"
    if (problem !== undefined) return Status.invalid(spec.kind, spec.group, name, `${field}[${key}]`, problem)
    out[key] = item
  }
  return out
}

/**
 * Refuses an update of a secret or config map marked immutable that changes its data or lifts the mark, as the API
 * server does.
 */
const immutableProblem = (
  spec: ResourceSpec,
  name: string,
  prepared: Record<string, unknown>,
  previous: KubeObject | undefined
): ApiResponse | undefined => {
  if (previous?.immutable !== true) return undefined
  if (prepared.immutable !== true) {
    return Status.invalid(spec.kind, spec.group, name, "immutable", "field is immutable when `immutable` is set")
  }
  for (const field of ["data", "binaryData"]) {
    if (JSON.stringify(prepared[field] ?? {}) !== JSON.stringify(previous[field] ?? {})) {
      return Status.invalid(spec.kind, spec.group, name, field, "field is immutable when `immutable` is set")
    }
  }
  return undefined
}

const nameOf = (body: Record<string, unknown>): string =>
  isRecord(body.metadata) && typeof body.metadata.name === "string" ? body.metadata.name : ""

const secrets: ResourceSpec = {
  resource: "secrets",
  singular: "secret",
  kind: "Secret",
  group: "",
  version: "v1",
  namespaced: true,
  shortNames: [],
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  prepare(body, previous) {
    const name = nameOf(body)
    const data = stringMap(
      secrets,
      name,
      "data",
      body.data,
      (_key, item) => base64.test(item) ? undefined : "illegal base64 data"
    )
    if (isResponse(data)) return data
    const stringData = stringMap(secrets, name, "stringData", body.stringData, () => undefined)
    if (isResponse(stringData)) return stringData
    const merged = { ...data }
    for (const [key, item] of Object.entries(stringData)) merged[key] = Buffer.from(item, "utf8").toString("base64")
    const { stringData: _dropped, ...rest } = body
    const type = typeof body.type === "string" && body.type !== "" ? body.type : "Opaque"
    const prepared = { ...rest, data: merged, type }
    return immutableProblem(secrets, name, prepared, previous) ?? prepared
  },
  columns: [
    nameColumn,
    { name: "Type", type: "string", format: "", description: "The type of secret", cell: (o) => o.type },
    { name: "Data", type: "string", format: "", description: "Number of data items", cell: (o) => countOf(o.data) },
    ageColumn
  ]
}

const configMaps: ResourceSpec = {
  resource: "configmaps",
  singular: "configmap",
  kind: "ConfigMap",
  group: "",
  version: "v1",
  namespaced: true,
  shortNames: ["cm"],
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  prepare(body, previous) {
    const name = nameOf(body)
    const data = stringMap(configMaps, name, "data", body.data, () => undefined)
    if (isResponse(data)) return data
    const binaryData = stringMap(
      configMaps,
      name,
      "binaryData",
      body.binaryData,
      (_key, item) => base64.test(item) ? undefined : "illegal base64 data"
    )
    if (isResponse(binaryData)) return binaryData
    for (const key of Object.keys(binaryData)) {
      if (key in data) {
        return Status.invalid("ConfigMap", "", name, `data[${key}]`, "duplicate of key present in binaryData")
      }
    }
    const out: Record<string, unknown> = { ...body }
    delete out.data
    delete out.binaryData
    const prepared = {
      ...out,
      ...(Object.keys(data).length > 0 ? { data } : {}),
      ...(Object.keys(binaryData).length > 0 ? { binaryData } : {})
    }
    return immutableProblem(configMaps, name, prepared, previous) ?? prepared
  },
  columns: [
    nameColumn,
    {
      name: "Data",
      type: "string",
      format: "",
      description: "Number of data items",
      cell: (o) => countOf(o.data) + countOf(o.binaryData)
    },
    ageColumn
  ]
}

const serviceAccounts: ResourceSpec = {
  resource: "serviceaccounts",
  singular: "serviceaccount",
  kind: "ServiceAccount",
  group: "",
  version: "v1",
  namespaced: true,
  shortNames: ["sa"],
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  prepare: (body) => body,
  columns: [
    nameColumn,
    {
      name: "Secrets",
      type: "string",
      format: "",
      description: "Number of secrets",
      cell: (o) => Array.isArray(o.secrets) ? o.secrets.length : 0
    },
    ageColumn
  ]
}

const namespaces: ResourceSpec = {
  resource: "namespaces",
  singular: "namespace",
  kind: "Namespace",
  group: "",
  version: "v1",
  namespaced: false,
  shortNames: ["ns"],
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  prepare(body, previous) {
    const name = nameOf(body)
    const metadata = isRecord(body.metadata) ? body.metadata : {}
    const labels = isRecord(metadata.labels) ? metadata.labels : {}
    return {
      ...body,
      metadata: { ...metadata, labels: { ...labels, "kubernetes.io/metadata.name": name } },
      spec: previous?.spec ?? { finalizers: ["kubernetes"] },
      status: previous?.status ?? { phase: "Active" }
    }
  },
  columns: [
    nameColumn,
    {
      name: "Status",
      type: "string",
      format: "",
      description: "The status of the namespace",
      cell: (o) => isRecord(o.status) ? o.status.phase : undefined
    },
    ageColumn
  ]
}

const clusterRoleBindings: ResourceSpec = {
  resource: "clusterrolebindings",
  singular: "clusterrolebinding",
  kind: "ClusterRoleBinding",
  group: "rbac.authorization.k8s.io",
  version: "v1",
  namespaced: false,
  shortNames: [],
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  prepare(body, previous) {
    const name = nameOf(body)
    const roleRef = body.roleRef
    if (
      !isRecord(roleRef) || typeof roleRef.name !== "string" || roleRef.name === "" ||
      roleRef.kind !== "ClusterRole" || roleRef.apiGroup !== "rbac.authorization.k8s.io"
    ) {
      return Status.invalid(
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        name,
        "roleRef",
        "must name a ClusterRole in apiGroup rbac.authorization.k8s.io"
      )
    }
    if (previous !== undefined && JSON.stringify(previous.roleRef) !== JSON.stringify(roleRef)) {
      return Status.invalid("ClusterRoleBinding", "rbac.authorization.k8s.io", name, "roleRef", "cannot change roleRef")
    }
    const subjects = body.subjects ?? []
    if (!Array.isArray(subjects) || !subjects.every((s) => isRecord(s) && typeof s.kind === "string" && s.name)) {
      return Status.invalid(
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        name,
        "subjects",
        "each subject " +
          "needs a kind and a name"
      )
    }
    return body
  },
  columns: [
    nameColumn,
    {
      name: "Role",
      type: "string",
      format: "",
      description: "The role this binding grants",
      cell: (o) => isRecord(o.roleRef) ? `ClusterRole/${String(o.roleRef.name)}` : ""
    },
    ageColumn
  ]
}

/** Every stored resource the dev API serves. */
export const resources: ReadonlyArray<ResourceSpec> = [
  namespaces,
  secrets,
  configMaps,
  serviceAccounts,
  clusterRoleBindings
]

/** The stored resource at `group`/`version` named `resource`, if the dev API serves it. */
export const findResource = (group: string, version: string, resource: string): ResourceSpec | undefined =>
  resources.find((spec) => spec.group === group && spec.version === version && spec.resource === resource)
