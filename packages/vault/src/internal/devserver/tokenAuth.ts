/**
 * The token auth method of the Vault dev server double: create, look up, renew and revoke tokens.
 */
import { isDurationError, parseDuration } from "./duration.ts"
import type { DevRequest, DevResponse } from "./reply.ts"
import {
  badRequest,
  booleanField,
  failure,
  formatTime,
  integerField,
  listField,
  noContent,
  ok,
  permissionDenied,
  stringField,
  unsupportedOperation,
  unsupportedPath
} from "./reply.ts"
import type { DevState, TokenEntry } from "./state.ts"
import { randomAccessor, randomTokenId, systemMaxTtl } from "./state.ts"

/** Vault's policy list for a token: lower-cased, deduplicated, sorted, `default` added unless refused; root alone. */
export const sanitizePolicies = (policies: ReadonlyArray<string>, addDefault: boolean): Array<string> => {
  const set = new Set(policies.map((policy) => policy.trim().toLowerCase()).filter((policy) => policy.length > 0))
  if (set.has("root")) return ["root"]
  if (addDefault) set.add("default")
  return Array.from(set).sort()
}

/** What a new token is issued with. */
export interface TokenGrant {
  readonly policies: ReadonlyArray<string>
  readonly ttl: number
  readonly explicitMaxTtl: number
  readonly maxTtl: number
  readonly period: number
  readonly renewable: boolean
  readonly numUses: number
  readonly displayName: string
  readonly meta: Readonly<Record<string, string>> | null
  readonly path: string
  readonly parent: string | undefined
  readonly id?: string | undefined
  readonly entityId?: string | undefined
}

/** Issues a token and returns it; a TTL of 0 means the token never expires. */
export const issueToken = (state: DevState, grant: TokenGrant, now: number): TokenEntry => {
  const entry: TokenEntry = {
    id: grant.id ?? randomTokenId(),
    accessor: randomAccessor(),
    policies: grant.policies,
    displayName: grant.displayName,
    meta: grant.meta,
    numUses: grant.numUses,
    creationTime: now,
    creationTtl: grant.ttl,
    issueTime: now,
    expireAt: grant.ttl > 0 ? now + grant.ttl * 1000 : undefined,
    explicitMaxTtl: grant.explicitMaxTtl,
    maxTtl: grant.maxTtl,
    period: grant.period,
    renewable: grant.renewable && grant.ttl > 0,
    path: grant.path,
    orphan: grant.parent === undefined,
    parent: grant.parent,
    entityId: grant.entityId ?? ""
  }
  state.addToken(entry)
  return entry
}

/** The `auth` block Vault returns when it issues or renews a token. */
export const authBlock = (entry: TokenEntry, now: number) => ({
  client_token: entry.id,
  accessor: entry.accessor,
  policies: entry.policies,
  token_policies: entry.policies,
  metadata: entry.meta,
  lease_duration: remainingTtl(entry, now),
  renewable: entry.renewable,
  entity_id: entry.entityId,
  token_type: "service",
  orphan: entry.orphan,
  mfa_requirement: null,
  num_uses: entry.numUses
})

const remainingTtl = (entry: TokenEntry, now: number): number =>
  entry.expireAt === undefined ? 0 : Math.max(0, Math.floor((entry.expireAt - now) / 1000))

/** The `data` of a token lookup. */
export const lookupData = (entry: TokenEntry, now: number) => ({
  accessor: entry.accessor,
  creation_time: Math.floor(entry.creationTime / 1000),
  creation_ttl: entry.creationTtl,
  display_name: entry.displayName,
  entity_id: entry.entityId,
  expire_time: entry.expireAt === undefined ? null : formatTime(entry.expireAt),
  explicit_max_ttl: entry.explicitMaxTtl,
  id: entry.id,
  issue_time: formatTime(entry.issueTime),
  meta: entry.meta,
  num_uses: entry.numUses,
  orphan: entry.orphan,
  path: entry.path,
  policies: entry.policies,
  renewable: entry.renewable,
  ttl: remainingTtl(entry, now),
  type: "service"
})

/** Extends a token's lease by `increment` seconds (or its original TTL), never past its maximum TTL. */
export const renewToken = (entry: TokenEntry, increment: number | undefined, now: number): DevResponse => {
  if (!entry.renewable || entry.expireAt === undefined) return badRequest("lease is not renewable")
  const requested = entry.period > 0
    ? entry.period
    : increment !== undefined && increment > 0
    ? increment
    : entry.creationTtl
  const maxTtl = Math.min(
    entry.explicitMaxTtl > 0 ? entry.explicitMaxTtl : systemMaxTtl,
    entry.maxTtl > 0 ? entry.maxTtl : systemMaxTtl,
    systemMaxTtl
  )
  const limit = entry.period > 0 && entry.explicitMaxTtl === 0
    ? Number.POSITIVE_INFINITY
    : entry.creationTime + maxTtl * 1000
  const expireAt = Math.min(now + requested * 1000, limit)
  entry.expireAt = expireAt
  entry.issueTime = now
  const granted = Math.floor((expireAt - now) / 1000)
  const warnings = granted < requested
    ? [`TTL of "${requested}s" exceeded the effective max_ttl of "${granted}s"; TTL value is capped accordingly`]
    : null
  return ok({ auth: authBlock(entry, now), warnings, mount_type: "token" })
}

const durationOrError = (body: Record<string, unknown>, key: string): number | string => {
  const parsed = parseDuration(body[key])
  if (isDurationError(parsed)) return parsed.error
  return parsed ?? 0
}

const createToken = (
  state: DevState,
  caller: TokenEntry,
  request: DevRequest,
  orphan: boolean,
  now: number
): DevResponse => {
  const body = request.body
  const callerIsRoot = caller.policies.includes("root")
  const requested = listField(body, "policies")
  const noDefault = booleanField(body, "no_default_policy") ?? false
  const policies = sanitizePolicies(requested ?? caller.policies, !noDefault)
  if (!callerIsRoot) {
    const allowed = new Set([...caller.policies, "default"])
    if (policies.some((policy) => !allowed.has(policy))) return badRequest("child policies must be subset of parent")
  }
  const ttl = durationOrError(body, "ttl")
  if (typeof ttl === "string") return badRequest(ttl)
  const explicitMaxTtl = durationOrError(body, "explicit_max_ttl")
  if (typeof explicitMaxTtl === "string") return badRequest(explicitMaxTtl)
  const period = durationOrError(body, "period")
  if (typeof period === "string") return badRequest(period)
  const type = stringField(body, "type") ?? "service"
  if (type !== "service" && type !== "default") {
    // TODO: batch tokens are not issued; refusing them beats handing out a service token the caller did not ask for.
    return badRequest(`token type ${JSON.stringify(type)} is not supported by the Vault dev server double`)
  }
  const numUses = integerField(body, "num_uses") ?? 0
  if (numUses < 0) return badRequest("number of uses cannot be negative")
  const id = stringField(body, "id")
  if (id !== undefined && !callerIsRoot) return badRequest("root or sudo privileges required to specify token id")
  if (id !== undefined && state.tokens.has(id)) return badRequest("cannot create a token with a duplicate ID")
  const rootWithoutTtl = policies.includes("root") && ttl === 0 && period === 0 && caller.expireAt === undefined
  const mount = state.auths.get("token/")
  const mountDefault = mount !== undefined && mount.defaultLeaseTtl > 0 ? mount.defaultLeaseTtl : systemMaxTtl
  const mountMax = mount !== undefined && mount.maxLeaseTtl > 0 ? mount.maxLeaseTtl : systemMaxTtl
  const baseTtl = period > 0 ? period : ttl > 0 ? ttl : rootWithoutTtl ? 0 : mountDefault
  const cap = Math.min(explicitMaxTtl > 0 ? explicitMaxTtl : systemMaxTtl, mountMax, systemMaxTtl)
  const effectiveTtl = baseTtl === 0 ? 0 : Math.min(baseTtl, cap)
  const meta = typeof body.meta === "object" && body.meta !== null && !Array.isArray(body.meta)
    ? Object.fromEntries(Object.entries(body.meta as Record<string, unknown>).map(([k, v]) => [k, String(v)]))
    : null
  const displayName = stringField(body, "display_name")
  const entry = issueToken(state, {
    id,
    policies,
    ttl: effectiveTtl,
    explicitMaxTtl,
    maxTtl: mountMax,
    period,
    renewable: booleanField(body, "renewable") ?? true,
    numUses,
    displayName: displayName === undefined ? "token" : `token-${displayName}`,
    meta,
    path: orphan ? "auth/token/create-orphan" : "auth/token/create",
    parent: orphan || (booleanField(body, "no_parent") ?? false) ? undefined : caller.id
  }, now)
  return ok({ auth: authBlock(entry, now), mount_type: "token" })
}

const byTokenOrAccessor = (state: DevState, body: Record<string, unknown>, now: number): TokenEntry | undefined => {
  const token = stringField(body, "token")
  if (token !== undefined) return state.liveToken(token, now)
  const accessor = stringField(body, "accessor")
  const id = accessor === undefined ? undefined : state.accessors.get(accessor)
  return id === undefined ? undefined : state.liveToken(id, now)
}

const isWrite = (request: DevRequest): boolean => request.method === "POST" || request.method === "PUT"

/** Serves `auth/token/<path>` for an authenticated caller. */
export const serveTokenAuth = (
  state: DevState,
  path: string,
  request: DevRequest,
  caller: TokenEntry,
  now: number
): DevResponse => {
  const increment = () => {
    const parsed = parseDuration(request.body.increment)
    return isDurationError(parsed) ? undefined : parsed
  }
  switch (path) {
    case "create":
    case "create-orphan":
      return isWrite(request)
        ? createToken(state, caller, request, path === "create-orphan", now)
        : unsupportedOperation
    case "lookup-self":
      return request.method === "GET" || isWrite(request)
        ? ok({ data: lookupData(caller, now), mount_type: "token" })
        : unsupportedOperation
    case "lookup":
    case "lookup-accessor": {
      if (!isWrite(request) && request.method !== "GET") return unsupportedOperation
      const entry = byTokenOrAccessor(state, request.body, now)
      if (entry === undefined) return failure(403, "bad token")
      const data = lookupData(entry, now)
      return ok({ data: path === "lookup-accessor" ? { ...data, id: "" } : data, mount_type: "token" })
    }
    case "renew-self":
      return isWrite(request) ? renewToken(caller, increment(), now) : unsupportedOperation
    case "renew":
    case "renew-accessor": {
      if (!isWrite(request)) return unsupportedOperation
      const entry = byTokenOrAccessor(state, request.body, now)
      return entry === undefined ? permissionDenied : renewToken(entry, increment(), now)
    }
    case "accessors":
      return request.method === "LIST"
        ? ok({ data: { keys: Array.from(state.accessors.keys()).sort() }, mount_type: "token" })
        : unsupportedOperation
    case "revoke-self":
      if (!isWrite(request)) return unsupportedOperation
      state.revokeToken(caller.id)
      return noContent
    case "revoke":
    case "revoke-accessor":
    case "revoke-orphan": {
      if (!isWrite(request)) return unsupportedOperation
      const entry = byTokenOrAccessor(state, request.body, now)
      if (entry !== undefined) state.revokeToken(entry.id)
      return noContent
    }
    default:
      return unsupportedPath
  }
}
