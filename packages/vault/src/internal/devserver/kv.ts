/**
 * The KV secrets engines of the Vault dev server double: version 1 (plain key/value) and version 2 (versioned, with
 * metadata, check-and-set, soft delete, undelete and destroy).
 */
import { formatDuration, isDurationError, parseDuration } from "./duration.ts"
import type { DevRequest, DevResponse } from "./reply.ts"
import {
  badRequest,
  booleanField,
  failure,
  formatTime,
  integerField,
  noContent,
  notFound,
  ok,
  unsupportedOperation
} from "./reply.ts"

/** Vault keeps this many versions when neither the secret nor the mount says otherwise. */
const defaultMaxVersions = 10

/** A KV version 1 mount's contents. */
export class KvV1Store {
  readonly entries = new Map<string, Record<string, unknown>>()
}

interface KvVersion {
  readonly createdTime: number
  deletionTime: number | undefined
  destroyed: boolean
  data: Record<string, unknown> | undefined
}

interface KvSecret {
  readonly versions: Map<number, KvVersion>
  currentVersion: number
  oldestVersion: number
  maxVersions: number
  casRequired: boolean
  deleteVersionAfter: number
  customMetadata: Record<string, string> | null
  readonly createdTime: number
  updatedTime: number
}

/** A KV version 2 mount's contents and its mount-wide configuration. */
export class KvV2Store {
  readonly secrets = new Map<string, KvSecret>()
  maxVersions = 0
  casRequired = false
  deleteVersionAfter = 0
}

/** A KV version 1 mount's entries as version 2 secrets, each at version 1, as Vault's upgrade leaves them. */
export const upgradeToV2 = (store: KvV1Store, now: number): KvV2Store => {
  const upgraded = new KvV2Store()
  for (const [key, data] of store.entries) {
    upgraded.secrets.set(key, {
      ...newSecret(now),
      versions: new Map([[1, { createdTime: now, deletionTime: undefined, destroyed: false, data }]]),
      currentVersion: 1,
      oldestVersion: 1
    })
  }
  return upgraded
}

/** Lists the direct children of `prefix` among `keys`, folders ending in "/", as Vault does. */
export const listChildren = (keys: Iterable<string>, prefix: string): Array<string> => {
  const children = new Set<string>()
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue
    const rest = key.slice(prefix.length)
    const slash = rest.indexOf("/")
    children.add(slash < 0 ? rest : rest.slice(0, slash + 1))
  }
  children.delete("")
  return Array.from(children).sort()
}

const listPrefix = (path: string): string => (path === "" || path.endsWith("/") ? path : `${path}/`)

const isList = (request: DevRequest): boolean => request.method === "LIST"

/** Whether a write to `path` in a KV mount creates (rather than updates) something, for the ACL check. */
export const kvExists = (store: KvV1Store | KvV2Store, path: string): boolean => {
  if (store instanceof KvV1Store) return store.entries.has(path)
  const [prefix, ...rest] = path.split("/")
  const secret = store.secrets.get(rest.join("/"))
  if (prefix === "data") return secret !== undefined && secret.currentVersion > 0
  if (prefix === "config") return true
  return secret !== undefined
}

/** Serves a request inside a KV version 1 mount; `path` is relative to the mount. */
export const serveKvV1 = (store: KvV1Store, path: string, request: DevRequest): DevResponse => {
  if (isList(request)) {
    const keys = listChildren(store.entries.keys(), listPrefix(path))
    return keys.length === 0 ? notFound : ok({ data: { keys }, mount_type: "kv" })
  }
  if (path === "" || path.endsWith("/")) return unsupportedOperation
  switch (request.method) {
    case "GET": {
      const data = store.entries.get(path)
      // KV version 1 reports the system TTL as a refresh hint, as Vault does.
      return data === undefined ? notFound : ok({ data, lease_duration: 768 * 3600, mount_type: "kv" })
    }
    case "POST":
    case "PUT": {
      if (Object.keys(request.body).length === 0) return badRequest("missing data fields")
      store.entries.set(path, structuredClone(request.body))
      return noContent
    }
    case "DELETE":
      store.entries.delete(path)
      return noContent
    default:
      return unsupportedOperation
  }
}

/** Serves a request inside a KV version 2 mount; `path` is relative to the mount. */
export const serveKvV2 = (store: KvV2Store, path: string, request: DevRequest, now: number): DevResponse => {
  if (path === "config") return serveConfig(store, request)
  const slash = path.indexOf("/")
  const prefix = slash < 0 ? path : path.slice(0, slash)
  const key = slash < 0 ? "" : path.slice(slash + 1)
  if (prefix === "metadata") return serveMetadata(store, key, request, now)
  if (isList(request)) return unsupportedOperation
  if (key === "" || key.endsWith("/")) {
    return ["data", "delete", "undelete", "destroy", "subkeys"].includes(prefix)
      ? unsupportedOperation
      : invalidVersionedPath
  }
  switch (prefix) {
    case "data":
      return serveData(store, key, request, now)
    case "delete":
      return versionsOperation(store, key, request, (version) => {
        if (version.deletionTime === undefined || version.deletionTime > now) version.deletionTime = now
      })
    case "undelete":
      return versionsOperation(store, key, request, (version) => {
        if (!version.destroyed) version.deletionTime = undefined
      })
    case "destroy":
      return versionsOperation(store, key, request, (version) => {
        version.destroyed = true
        version.data = undefined
      })
    case "subkeys":
      return serveSubkeys(store, key, request, now)
    default:
      return invalidVersionedPath
  }
}

/** The structure of a secret's data with every leaf value replaced by null, down to `depth` levels (0: all). */
const subkeysOf = (data: Record<string, unknown>, depth: number, level: number = 1): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(data).map(([key, value]) =>
      typeof value === "object" && value !== null && !Array.isArray(value) && (depth === 0 || level < depth)
        ? [key, subkeysOf(value as Record<string, unknown>, depth, level + 1)]
        : [key, null]
    )
  )

const serveSubkeys = (store: KvV2Store, key: string, request: DevRequest, now: number): DevResponse => {
  if (request.method !== "GET") return unsupportedOperation
  const secret = store.secrets.get(key)
  if (secret === undefined) return notFound
  const requested = request.query.get("version")
  const number = requested === null || requested === "0" ? secret.currentVersion : Number(requested)
  const depth = Number(request.query.get("depth") ?? "0")
  if (!Number.isInteger(number) || !Number.isInteger(depth) || depth < 0) {
    return badRequest("version and depth must be non-negative integers")
  }
  const version = secret.versions.get(number)
  if (version === undefined) return notFound
  const metadata = versionMetadata(secret, number, version)
  if (version.destroyed || isDeleted(version, now) || version.data === undefined) {
    return { status: 404, body: ok({ data: { subkeys: null, metadata }, mount_type: "kv" }).body }
  }
  return ok({ data: { subkeys: subkeysOf(version.data, depth), metadata }, mount_type: "kv" })
}

const invalidVersionedPath = failure(
  404,
  "invalid path for a versioned K/V secrets engine: use the data/, metadata/, delete/, undelete/, destroy/ and " +
    "config paths of the mount"
)

const maxVersionsOf = (store: KvV2Store, secret: KvSecret): number =>
  secret.maxVersions > 0 ? secret.maxVersions : store.maxVersions > 0 ? store.maxVersions : defaultMaxVersions

const isDeleted = (version: KvVersion, now: number): boolean =>
  version.deletionTime !== undefined && version.deletionTime <= now

const versionMetadata = (secret: KvSecret, number: number, version: KvVersion) => ({
  created_time: formatTime(version.createdTime),
  custom_metadata: secret.customMetadata,
  deletion_time: version.deletionTime === undefined ? "" : formatTime(version.deletionTime),
  destroyed: version.destroyed,
  version: number
})

const newSecret = (now: number): KvSecret => ({
  versions: new Map(),
  currentVersion: 0,
  oldestVersion: 0,
  maxVersions: 0,
  casRequired: false,
  deleteVersionAfter: 0,
  customMetadata: null,
  createdTime: now,
  updatedTime: now
})

const serveData = (store: KvV2Store, key: string, request: DevRequest, now: number): DevResponse => {
  switch (request.method) {
    case "GET": {
      const secret = store.secrets.get(key)
      if (secret === undefined) return notFound
      const requested = request.query.get("version")
      const number = requested === null || requested === "0" ? secret.currentVersion : Number(requested)
      if (!Number.isInteger(number)) return badRequest(`invalid version ${JSON.stringify(requested)}`)
      const version = secret.versions.get(number)
      if (version === undefined) return notFound
      const metadata = versionMetadata(secret, number, version)
      if (version.destroyed || isDeleted(version, now)) {
        // Vault answers 404 but still shows the version's metadata, so a client can tell deleted from missing.
        return { status: 404, body: ok({ data: { data: null, metadata }, mount_type: "kv" }).body }
      }
      return ok({ data: { data: version.data, metadata }, mount_type: "kv" })
    }
    case "POST":
    case "PUT":
      return writeData(store, key, request.body, now, (_previous, data) => data)
    case "PATCH": {
      if (!(request.contentType ?? "").includes("application/merge-patch+json")) {
        return failure(415, "PATCH requires the Content-Type application/merge-patch+json")
      }
      const secret = store.secrets.get(key)
      const current = secret?.versions.get(secret.currentVersion)
      if (secret === undefined || current === undefined || current.destroyed || isDeleted(current, now)) {
        return notFound
      }
      return writeData(store, key, request.body, now, (previous, patch) => mergePatch(previous ?? {}, patch))
    }
    case "DELETE": {
      const secret = store.secrets.get(key)
      const version = secret?.versions.get(secret.currentVersion)
      if (version !== undefined && !version.destroyed && !isDeleted(version, now)) version.deletionTime = now
      if (secret !== undefined) secret.updatedTime = now
      return noContent
    }
    default:
      return unsupportedOperation
  }
}

const writeData = (
  store: KvV2Store,
  key: string,
  body: Record<string, unknown>,
  now: number,
  combine: (previous: Record<string, unknown> | undefined, data: Record<string, unknown>) => Record<string, unknown>
): DevResponse => {
  const data = body.data
  if (typeof data !== "object" || data === null || Array.isArray(data)) return badRequest("no data provided")
  const options = typeof body.options === "object" && body.options !== null
    ? body.options as Record<string, unknown>
    : {}
  const cas = integerField(options, "cas")
  const existing = store.secrets.get(key)
  const casRequired = store.casRequired || (existing?.casRequired ?? false)
  if (casRequired && cas === undefined) return badRequest("check-and-set parameter required for this call")
  if (cas !== undefined && cas !== (existing?.currentVersion ?? 0)) {
    return badRequest("check-and-set parameter did not match the current version")
  }
  const secret = existing ?? newSecret(now)
  store.secrets.set(key, secret)
  const previous = secret.versions.get(secret.currentVersion)?.data
  const number = secret.currentVersion + 1
  const deleteAfter = secret.deleteVersionAfter > 0 ? secret.deleteVersionAfter : store.deleteVersionAfter
  const version: KvVersion = {
    createdTime: now,
    deletionTime: deleteAfter > 0 ? now + deleteAfter * 1000 : undefined,
    destroyed: false,
    data: structuredClone(combine(previous, data as Record<string, unknown>))
  }
  secret.versions.set(number, version)
  secret.currentVersion = number
  secret.updatedTime = now
  if (secret.oldestVersion === 0) secret.oldestVersion = number
  prune(store, secret)
  return ok({ data: versionMetadata(secret, number, version), mount_type: "kv" })
}

const prune = (store: KvV2Store, secret: KvSecret): void => {
  const keep = maxVersionsOf(store, secret)
  while (secret.versions.size > keep) {
    const oldest = Math.min(...secret.versions.keys())
    secret.versions.delete(oldest)
  }
  secret.oldestVersion = secret.versions.size === 0 ? secret.oldestVersion : Math.min(...secret.versions.keys())
}

const mergePatch = (target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> => {
  const result: Record<string, unknown> = { ...target }
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else if (typeof value === "object" && !Array.isArray(value)) {
      const base = result[key]
      result[key] = mergePatch(
        typeof base === "object" && base !== null && !Array.isArray(base) ? base as Record<string, unknown> : {},
        value as Record<string, unknown>
      )
    } else result[key] = value
  }
  return result
}

const versionsOperation = (
  store: KvV2Store,
  key: string,
  request: DevRequest,
  apply: (version: KvVersion) => void
): DevResponse => {
  if (request.method !== "POST" && request.method !== "PUT") return unsupportedOperation
  const raw = request.body.versions
  const list = Array.isArray(raw)
    ? raw
    : typeof raw === "string"
    ? raw.split(",")
    : typeof raw === "number"
    ? [raw]
    : []
  const numbers = list.map((item) => Number(item)).filter((item) => Number.isInteger(item))
  if (numbers.length === 0) return badRequest("no version number provided")
  const secret = store.secrets.get(key)
  if (secret === undefined) return noContent
  for (const number of numbers) {
    const version = secret.versions.get(number)
    if (version !== undefined) apply(version)
  }
  return noContent
}

const serveMetadata = (store: KvV2Store, key: string, request: DevRequest, now: number): DevResponse => {
  if (isList(request)) {
    const keys = listChildren(store.secrets.keys(), listPrefix(key))
    return keys.length === 0 ? notFound : ok({ data: { keys }, mount_type: "kv" })
  }
  if (key === "" || key.endsWith("/")) return unsupportedOperation
  switch (request.method) {
    case "GET": {
      const secret = store.secrets.get(key)
      if (secret === undefined) return notFound
      const versions: Record<string, unknown> = {}
      for (const [number, version] of secret.versions) {
        versions[String(number)] = {
          created_time: formatTime(version.createdTime),
          deletion_time: version.deletionTime === undefined ? "" : formatTime(version.deletionTime),
          destroyed: version.destroyed
        }
      }
      return ok({
        data: {
          cas_required: secret.casRequired,
          created_time: formatTime(secret.createdTime),
          current_version: secret.currentVersion,
          custom_metadata: secret.customMetadata,
          delete_version_after: formatDuration(secret.deleteVersionAfter),
          max_versions: secret.maxVersions,
          oldest_version: secret.oldestVersion,
          updated_time: formatTime(secret.updatedTime),
          versions
        },
        mount_type: "kv"
      })
    }
    case "POST":
    case "PUT":
    case "PATCH": {
      const secret = store.secrets.get(key) ?? newSecret(now)
      if (request.method === "PATCH" && !store.secrets.has(key)) return notFound
      const error = applyMetadata(secret, request.body, request.method === "PATCH")
      if (error !== undefined) return badRequest(error)
      secret.updatedTime = now
      store.secrets.set(key, secret)
      prune(store, secret)
      return noContent
    }
    case "DELETE":
      store.secrets.delete(key)
      return noContent
    default:
      return unsupportedOperation
  }
}

const applyMetadata = (secret: KvSecret, body: Record<string, unknown>, patch: boolean): string | undefined => {
  const maxVersions = integerField(body, "max_versions")
  if (body.max_versions !== undefined && (maxVersions === undefined || maxVersions < 0)) {
    return "max_versions must be a non-negative integer"
  }
  const deleteAfter = parseDuration(body.delete_version_after)
  if (isDurationError(deleteAfter)) return deleteAfter.error
  const custom = body.custom_metadata
  if (custom !== undefined && custom !== null && (typeof custom !== "object" || Array.isArray(custom))) {
    return "custom_metadata must be a map of strings"
  }
  if (maxVersions !== undefined) secret.maxVersions = maxVersions
  const casRequired = booleanField(body, "cas_required")
  if (casRequired !== undefined) secret.casRequired = casRequired
  if (deleteAfter !== undefined) secret.deleteVersionAfter = deleteAfter
  if (custom !== undefined) {
    const entries = Object.entries((custom ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)])
    const merged = patch ? { ...secret.customMetadata, ...Object.fromEntries(entries) } : Object.fromEntries(entries)
    secret.customMetadata = Object.keys(merged).length === 0 ? null : merged
  }
  return undefined
}

const serveConfig = (store: KvV2Store, request: DevRequest): DevResponse => {
  switch (request.method) {
    case "GET":
      return ok({
        data: {
          cas_required: store.casRequired,
          delete_version_after: formatDuration(store.deleteVersionAfter),
          max_versions: store.maxVersions
        },
        mount_type: "kv"
      })
    case "POST":
    case "PUT": {
      const maxVersions = integerField(request.body, "max_versions")
      const deleteAfter = parseDuration(request.body.delete_version_after)
      if (isDurationError(deleteAfter)) return badRequest(deleteAfter.error)
      const casRequired = booleanField(request.body, "cas_required")
      if (maxVersions !== undefined) store.maxVersions = maxVersions
      if (casRequired !== undefined) store.casRequired = casRequired
      if (deleteAfter !== undefined) store.deleteVersionAfter = deleteAfter
      return noContent
    }
    default:
      return unsupportedOperation
  }
}
