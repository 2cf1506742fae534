/**
 * The `sys/` endpoints of the Vault dev server double: health, seal state, mounts, auth methods and ACL policies.
 */
import { isDurationError, parseDuration } from "./duration.ts"
import { newKubernetesAuthState } from "./kubernetesAuth.ts"
import { KvV1Store, upgradeToV2 } from "./kv.ts"
import { capabilitiesOn, parsePolicy } from "./policy.ts"
import type { Policy } from "./policy.ts"
import type { DevRequest, DevResponse } from "./reply.ts"
import {
  badRequest,
  envelope,
  listField,
  noContent,
  notFound,
  ok,
  randomId,
  stringField,
  unsupportedOperation,
  unsupportedPath
} from "./reply.ts"
import type { AuthMount, DevState, SecretMount, TokenEntry } from "./state.ts"

/** The Vault version the double reports. */
export const reportedVersion = "1.17.0+dev-double"

/** Paths under `sys/` that answer without a token. */
export const unauthenticatedSysPaths: ReadonlySet<string> = new Set([
  "health",
  "seal-status",
  "unseal",
  "init",
  "leader"
])

/** Paths under `sys/` that answer while sealed. */
export const sealedSysPaths: ReadonlySet<string> = new Set(["health", "seal-status", "unseal", "init", "leader"])

const isWrite = (request: DevRequest): boolean => request.method === "POST" || request.method === "PUT"

const queryFlag = (query: URLSearchParams, key: string): boolean => {
  const value = query.get(key)
  return value !== null && (value === "" || value === "true" || value === "1")
}

const queryCode = (query: URLSearchParams, key: string, fallback: number): number => {
  const value = query.get(key)
  const code = value === null ? Number.NaN : Number.parseInt(value, 10)
  return Number.isInteger(code) && code >= 100 && code <= 999 ? code : fallback
}

const health = (state: DevState, request: DevRequest, now: number): DevResponse => {
  const query = request.query
  const { initialized, performanceStandby, standby } = state.health
  const code = !initialized
    ? queryCode(query, "uninitcode", 501)
    : state.sealed
    ? queryCode(query, "sealedcode", 503)
    : performanceStandby
    ? queryFlag(query, "perfstandbyok")
      ? queryCode(query, "activecode", 200)
      : queryCode(query, "performancestandbycode", 473)
    : standby
    ? queryFlag(query, "standbyok")
      ? queryCode(query, "activecode", 200)
      : queryCode(query, "standbycode", 429)
    : queryCode(query, "activecode", 200)
  const body = {
    initialized,
    sealed: state.sealed,
    standby: standby || performanceStandby,
    performance_standby: performanceStandby,
    replication_performance_mode: "disabled",
    replication_dr_mode: "disabled",
    server_time_utc: Math.floor(now / 1000),
    version: reportedVersion,
    enterprise: false,
    cluster_name: state.clusterName,
    cluster_id: state.clusterId,
    echo_duration_ms: 0,
    clock_skew_ms: 0
  }
  return request.method === "HEAD" ? { status: code } : { status: code, body }
}

/** The body of `sys/seal-status` (and of `sys/unseal`). */
export const sealStatus = (state: DevState) => ({
  type: "shamir",
  initialized: state.health.initialized,
  sealed: state.sealed,
  t: 1,
  n: 1,
  progress: 0,
  nonce: "",
  version: reportedVersion,
  build_date: "2024-06-10T00:00:00Z",
  migration: false,
  cluster_name: state.sealed ? "" : state.clusterName,
  cluster_id: state.sealed ? "" : state.clusterId,
  recovery_seal: false,
  storage_type: "inmem"
})

const mountEntry = (mount: SecretMount) => ({
  accessor: mount.accessor,
  config: {
    default_lease_ttl: mount.defaultLeaseTtl,
    force_no_cache: false,
    max_lease_ttl: mount.maxLeaseTtl
  },
  description: mount.description,
  external_entropy_access: false,
  local: false,
  options: mount.version === undefined ? null : { version: String(mount.version) },
  plugin_version: "",
  running_plugin_version: "",
  running_sha256: "",
  seal_wrap: false,
  type: mount.type,
  uuid: mount.uuid
})

const authEntry = (mount: AuthMount) => ({
  accessor: mount.accessor,
  config: {
    default_lease_ttl: mount.defaultLeaseTtl,
    force_no_cache: false,
    max_lease_ttl: mount.maxLeaseTtl,
    token_type: "default-service"
  },
  description: mount.description,
  external_entropy_access: false,
  local: false,
  options: null,
  plugin_version: "",
  running_plugin_version: "",
  running_sha256: "",
  seal_wrap: false,
  type: mount.type,
  uuid: mount.uuid
})

/** Vault answers list-style `sys/` reads with the entries both at the top level and in `data`, for old clients. */
const legacyListing = (data: Record<string, unknown>): DevResponse => ({
  status: 200,
  body: envelope({ data, mount_type: "system" }, data)
})

/** `sys/internal/ui/mounts/<path>`: the mount that holds `path`, as clients ask to learn a KV mount's version. */
export const uiMount = (state: DevState, path: string): DevResponse => {
  const mount = state.secretMountFor(path)
  if (mount === undefined || mount.type === "system") {
    return badRequest(`no mount found for path ${JSON.stringify(path)}`)
  }
  return ok({ data: { ...mountEntry(mount), path: mount.path }, mount_type: "system" })
}

const normalizeMountPath = (path: string): string => `${path.replace(/^\/+|\/+$/g, "")}/`

const reservedMounts = new Set(["sys/", "identity/", "auth/", "cubbyhole/"])

const mountOptionsVersion = (body: Record<string, unknown>): string | undefined => {
  const options = body.options
  if (typeof options !== "object" || options === null) return undefined
  return stringField(options as Record<string, unknown>, "version")
}

const tuneData = (mount: SecretMount | AuthMount) => ({
  default_lease_ttl: mount.defaultLeaseTtl,
  max_lease_ttl: mount.maxLeaseTtl,
  force_no_cache: false,
  description: mount.description,
  options: "version" in mount && mount.version !== undefined ? { version: String(mount.version) } : null
})

/** `sys/mounts/<path>/tune` and `sys/auth/<path>/tune`: read or change a mount's TTLs, description and KV version. */
const serveTune = (mount: SecretMount | AuthMount, request: DevRequest, now: number): DevResponse => {
  if (request.method === "GET") return legacyListing(tuneData(mount))
  if (!isWrite(request)) return unsupportedOperation
  const body = request.body
  const defaultTtl = parseDuration(body.default_lease_ttl)
  const maxTtl = parseDuration(body.max_lease_ttl)
  if (isDurationError(defaultTtl)) return badRequest(defaultTtl.error)
  if (isDurationError(maxTtl)) return badRequest(maxTtl.error)
  const version = mountOptionsVersion(body)
  if (version !== undefined && "version" in mount) {
    if (mount.type !== "kv" || (version !== "1" && version !== "2")) return badRequest(`invalid version ${version}`)
    if (version === "1" && mount.version === 2) {
      return badRequest("cannot downgrade mount from versioned to non-versioned")
    }
    if (version === "2" && mount.store instanceof KvV1Store) {
      mount.store = upgradeToV2(mount.store, now)
      mount.version = 2
    }
  }
  if (defaultTtl !== undefined) mount.defaultLeaseTtl = defaultTtl
  if (maxTtl !== undefined) mount.maxLeaseTtl = maxTtl
  const description = stringField(body, "description")
  if (description !== undefined) mount.description = description
  return noContent
}

const tuneTarget = <M extends { readonly path: string }>(mounts: Map<string, M>, rest: string): M | undefined =>
  rest.endsWith("/tune") ? mounts.get(normalizeMountPath(rest.slice(0, -"/tune".length))) : undefined

const serveMounts = (state: DevState, rest: string, request: DevRequest, now: number): DevResponse => {
  if (rest === "") {
    if (request.method !== "GET") return unsupportedOperation
    return legacyListing(Object.fromEntries(Array.from(state.mounts.values(), (m) => [m.path, mountEntry(m)])))
  }
  const tuned = tuneTarget(state.mounts, rest)
  if (tuned !== undefined) return serveTune(tuned, request, now)
  const path = normalizeMountPath(rest)
  if (request.method === "GET") {
    const mount = state.mounts.get(path)
    return mount === undefined ? badRequest(`no mount entry found for ${JSON.stringify(path)}`) : legacyListing(
      mountEntry(mount)
    )
  }
  if (request.method === "DELETE") {
    if (reservedMounts.has(path)) return badRequest(`cannot unmount ${JSON.stringify(path)}`)
    state.mounts.delete(path)
    return noContent
  }
  if (!isWrite(request)) return unsupportedOperation
  const type = stringField(request.body, "type")
  if (type === undefined || type === "") return badRequest("backend type must be specified as a string")
  if (reservedMounts.has(path)) return badRequest(`cannot mount at ${JSON.stringify(path)}`)
  for (const existing of state.mounts.keys()) {
    if (existing.startsWith(path) || path.startsWith(existing)) {
      return badRequest(`path is already in use at ${existing}`)
    }
  }
  const description = stringField(request.body, "description") ?? ""
  if (type === "kv" || type === "kv-v2" || type === "kv-v1") {
    const declared = mountOptionsVersion(request.body)
    const version = type === "kv-v2" || declared === "2" ? 2 : 1
    state.mountSecrets(path, "kv", version, description)
    return noContent
  }
  return badRequest(`plugin not found in the catalog: ${type}`)
}

const serveAuthMounts = (state: DevState, rest: string, request: DevRequest, now: number): DevResponse => {
  if (rest === "") {
    if (request.method !== "GET") return unsupportedOperation
    return legacyListing(Object.fromEntries(Array.from(state.auths.values(), (m) => [m.path, authEntry(m)])))
  }
  const tuned = tuneTarget(state.auths, rest)
  if (tuned !== undefined) return serveTune(tuned, request, now)
  const path = normalizeMountPath(rest)
  if (request.method === "DELETE") {
    if (path === "token/") return badRequest("token credential backend cannot be disabled")
    state.auths.delete(path)
    return noContent
  }
  if (!isWrite(request)) return unsupportedOperation
  const type = stringField(request.body, "type")
  if (type === undefined || type === "") return badRequest("backend type must be specified as a string")
  for (const existing of state.auths.keys()) {
    if (existing.startsWith(path) || path.startsWith(existing)) {
      return badRequest(`path is already in use at auth/${existing}`)
    }
  }
  if (type === "token") return badRequest("token credential backend cannot be instantiated")
  if (type !== "kubernetes") return badRequest(`plugin not found in the catalog: ${type}`)
  state.auths.set(path, {
    path,
    type,
    description: stringField(request.body, "description") ?? "",
    accessor: `auth_kubernetes_${randomId().slice(0, 8)}`,
    uuid: randomId(),
    kubernetes: newKubernetesAuthState(),
    defaultLeaseTtl: 0,
    maxLeaseTtl: 0
  })
  return noContent
}

const policyNames = (state: DevState): Array<string> => Array.from(state.policies.keys()).sort()

const writePolicy = (state: DevState, name: string, text: string | undefined): DevResponse => {
  if (name === "root") return badRequest("cannot update \"root\" policy")
  if (text === undefined) return badRequest("'policy' parameter not supplied or empty")
  const parsed = parsePolicy(name, text)
  if ("error" in parsed) return badRequest(parsed.error)
  state.policies.set(name, parsed)
  return noContent
}

const deletePolicy = (state: DevState, name: string): DevResponse => {
  if (name === "root" || name === "default") return badRequest(`cannot delete ${JSON.stringify(name)} policy`)
  state.policies.delete(name)
  return noContent
}

const serveAclPolicies = (state: DevState, rest: string, request: DevRequest): DevResponse => {
  if (rest === "" || request.method === "LIST") {
    if (request.method !== "LIST") return unsupportedOperation
    return ok({ data: { keys: policyNames(state), policies: policyNames(state) }, mount_type: "system" })
  }
  const name = rest.toLowerCase()
  switch (request.method) {
    case "GET": {
      const policy = state.policies.get(name)
      return policy === undefined ? notFound : ok({ data: { name, policy: policy.text }, mount_type: "system" })
    }
    case "POST":
    case "PUT":
      return writePolicy(state, name, stringField(request.body, "policy"))
    case "DELETE":
      return deletePolicy(state, name)
    default:
      return unsupportedOperation
  }
}

/** The older `sys/policy` endpoints, still used by several client libraries. */
const serveLegacyPolicies = (state: DevState, rest: string, request: DevRequest): DevResponse => {
  if (rest === "") {
    if (request.method !== "GET" && request.method !== "LIST") return unsupportedOperation
    return legacyListing({ keys: policyNames(state), policies: policyNames(state) })
  }
  const name = rest.toLowerCase()
  switch (request.method) {
    case "GET": {
      const policy = state.policies.get(name)
      return policy === undefined ? notFound : legacyListing({ name, rules: policy.text })
    }
    case "POST":
    case "PUT":
      return writePolicy(state, name, stringField(request.body, "policy") ?? stringField(request.body, "rules"))
    case "DELETE":
      return deletePolicy(state, name)
    default:
      return unsupportedOperation
  }
}

/** The policies a token holds, in the form the ACL check needs. */
export const policiesOf = (state: DevState, entry: TokenEntry): Array<Policy> =>
  entry.policies.flatMap((name) => {
    const policy = state.policies.get(name)
    return policy === undefined ? [] : [policy]
  })

/** The capability names Vault reports for a token on a path. */
export const reportCapabilities = (state: DevState, entry: TokenEntry, path: string): Array<string> => {
  if (entry.policies.includes("root")) return ["root"]
  const granted = Array.from(capabilitiesOn(policiesOf(state, entry), path.replace(/^\/+/, ""))).sort()
  return granted.length === 0 ? ["deny"] : granted
}

const serveCapabilities = (
  state: DevState,
  request: DevRequest,
  entry: TokenEntry | undefined
): DevResponse => {
  if (!isWrite(request)) return unsupportedOperation
  if (entry === undefined) return badRequest("invalid token")
  const paths = listField(request.body, "paths") ?? listField(request.body, "path") ?? []
  if (paths.length === 0) return badRequest("missing paths")
  const data: Record<string, Array<string>> = {}
  for (const path of paths) data[path] = reportCapabilities(state, entry, path)
  if (paths.length === 1) data.capabilities = data[paths[0]!]!
  return legacyListing(data)
}

/** Serves `sys/<path>`; `caller` is the authenticated token, absent on unauthenticated paths. */
export const serveSys = (
  state: DevState,
  path: string,
  request: DevRequest,
  caller: TokenEntry | undefined,
  now: number
): DevResponse => {
  const slash = path.indexOf("/")
  const head = slash < 0 ? path : path.slice(0, slash)
  const rest = slash < 0 ? "" : path.slice(slash + 1)
  switch (head) {
    case "health":
      return request.method === "GET" || request.method === "HEAD" ? health(state, request, now) : unsupportedOperation
    case "seal-status":
      return request.method === "GET" ? { status: 200, body: sealStatus(state) } : unsupportedOperation
    case "init":
      return request.method === "GET"
        ? { status: 200, body: { initialized: state.health.initialized } }
        : badRequest("Vault is already initialized")
    case "leader":
      return request.method === "GET"
        ? {
          status: 200,
          body: {
            ha_enabled: false,
            is_self: false,
            active_time: "0001-01-01T00:00:00Z",
            leader_address: "",
            leader_cluster_address: "",
            performance_standby: false,
            performance_standby_last_remote_wal: 0
          }
        }
        : unsupportedOperation
    case "seal":
      if (!isWrite(request)) return unsupportedOperation
      state.sealed = true
      return noContent
    case "unseal": {
      if (!isWrite(request)) return unsupportedOperation
      const key = stringField(request.body, "key")
      if (request.body.reset === true || !state.sealed) return { status: 200, body: sealStatus(state) }
      if (key === undefined) {
        return badRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
      }
      if (key !== state.unsealKey) return badRequest("Vault is sealed: the unseal key does not match")
      state.sealed = false
      return { status: 200, body: sealStatus(state) }
    }
    case "mounts":
      return serveMounts(state, rest, request, now)
    case "auth":
      return serveAuthMounts(state, rest, request, now)
    case "policies":
      return rest === "acl" || rest.startsWith("acl/")
        ? serveAclPolicies(state, rest.slice(4), request)
        : unsupportedPath
    case "policy":
      return serveLegacyPolicies(state, rest, request)
    case "capabilities-self":
      return serveCapabilities(state, request, caller)
    case "capabilities": {
      const token = stringField(request.body, "token")
      return serveCapabilities(state, request, token === undefined ? undefined : state.liveToken(token, now))
    }
    default:
      return unsupportedPath
  }
}
