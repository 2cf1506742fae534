/**
 * Routes one request through the Vault dev server double as Vault does: seal check, token check, ACL check, then
 * the handler of the path's mount.
 */
import { Clock, Effect } from "effect"
import { serveKubernetesAuth } from "./kubernetesAuth.ts"
import { kvExists, serveKvV1, serveKvV2 } from "./kv.ts"
import { KvV1Store, KvV2Store } from "./kv.ts"
import { capabilitiesOn } from "./policy.ts"
import type { Capability } from "./policy.ts"
import type { DevRequest, DevResponse } from "./reply.ts"
import { badRequest, failure, permissionDenied, sealed, unsupportedPath } from "./reply.ts"
import type { DevState, TokenEntry } from "./state.ts"
import { policiesOf, sealedSysPaths, serveSys, uiMount, unauthenticatedSysPaths } from "./sys.ts"
import { serveTokenAuth } from "./tokenAuth.ts"

/** Vault's answer from a freshly enabled KV v2 mount while it prepares its storage; clients retry on it. */
export const upgradingMessage =
  "Upgrading from non-versioned to versioned data. This backend will be unavailable for " +
  "a brief period and will resume service shortly."

const sysHead = (path: string): string | undefined => {
  if (!path.startsWith("sys/")) return undefined
  const rest = path.slice(4)
  const slash = rest.indexOf("/")
  return slash < 0 ? rest : rest.slice(0, slash)
}

const isLoginPath = (state: DevState, path: string): boolean => {
  if (!path.startsWith("auth/")) return false
  const mount = state.authMountFor(path.slice(5))
  return mount !== undefined && mount.type !== "token" && path.slice(5 + mount.path.length) === "login"
}

/** Paths whose writes need `sudo` on top of the usual capability, as in Vault. */
const needsSudo = (path: string, request: DevRequest): boolean =>
  path === "sys/seal" || path === "auth/token/revoke-orphan" || path === "auth/token/accessors" ||
  (path.startsWith("sys/auth/") && request.method !== "GET")

const existenceFor = (state: DevState, path: string): boolean => {
  if (path.startsWith("auth/")) {
    const mount = state.authMountFor(path.slice(5))
    const rest = mount === undefined ? "" : path.slice(5 + mount.path.length)
    if (mount?.kubernetes === undefined) return true
    if (rest === "config") return mount.kubernetes.config !== undefined
    if (rest.startsWith("role/")) return mount.kubernetes.roles.has(rest.slice(5))
    return true
  }
  const mount = state.secretMountFor(path)
  if (mount?.store === undefined) return true
  return kvExists(mount.store, path.slice(mount.path.length))
}

const requiredCapability = (state: DevState, path: string, request: DevRequest): Capability => {
  switch (request.method) {
    case "LIST":
      return "list"
    case "GET":
    case "HEAD":
      return "read"
    case "PATCH":
      return "patch"
    case "DELETE":
      return "delete"
    default:
      return existenceFor(state, path) ? "update" : "create"
  }
}

/** Whether the caller's policies allow this request, as Vault's ACL decides. */
export const isAllowed = (state: DevState, caller: TokenEntry, request: DevRequest): boolean => {
  if (caller.policies.includes("root")) return true
  // Vault checks a list against the path as a folder.
  const path = request.method === "LIST" && !request.path.endsWith("/") ? `${request.path}/` : request.path
  const granted = capabilitiesOn(policiesOf(state, caller), path)
  if (granted.has("deny")) return false
  if (needsSudo(request.path, request) && !granted.has("sudo")) return false
  return granted.has(requiredCapability(state, request.path, request))
}

const authenticate = (state: DevState, token: string | undefined, now: number): TokenEntry | undefined =>
  token === undefined || token === "" ? undefined : state.liveToken(token, now)

/** Serves one request. */
export const route = (state: DevState, request: DevRequest): Effect.Effect<DevResponse> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const path = request.path
    const head = sysHead(path)
    if ((state.sealed || !state.health.initialized) && !(head !== undefined && sealedSysPaths.has(head))) {
      return sealed
    }
    const open = (head !== undefined && unauthenticatedSysPaths.has(head)) || isLoginPath(state, path)
    const caller = authenticate(state, request.token, now)
    if (path.startsWith("sys/internal/ui/mounts/") && request.method === "GET") {
      // Vault answers this to any valid token, so that clients can find a mount's type and KV version.
      return caller === undefined ? permissionDenied : uiMount(state, path.slice("sys/internal/ui/mounts/".length))
    }
    if (!open) {
      if (caller === undefined || !isAllowed(state, caller, request)) return permissionDenied
      if (caller.numUses > 0) {
        caller.numUses -= 1
        // The request that spends the last use still succeeds; the token is gone afterwards.
        if (caller.numUses === 0) state.revokeToken(caller.id)
      }
    }
    if (request.wrapTtl !== undefined) {
      // TODO: response wrapping is not implemented; refusing it beats answering unwrapped to a client that asked.
      return badRequest("response wrapping (X-Vault-Wrap-TTL) is not supported by the Vault dev server double")
    }
    if (head !== undefined) return serveSys(state, path.slice(4), request, caller, now)
    if (path.startsWith("auth/")) {
      const mount = state.authMountFor(path.slice(5))
      if (mount === undefined) return noRoute(path)
      const rest = path.slice(5 + mount.path.length)
      if (mount.type === "token") {
        return caller === undefined
          ? permissionDenied
          : serveTokenAuth(state, rest, request, caller, now)
      }
      return yield* serveKubernetesAuth(state, mount, rest, request, now)
    }
    const mount = state.secretMountFor(path)
    if (mount === undefined) return noRoute(path)
    const rest = path.slice(mount.path.length)
    if (mount.upgradeRequestsLeft > 0) {
      mount.upgradeRequestsLeft -= 1
      return badRequest(upgradingMessage)
    }
    if (mount.store instanceof KvV2Store) return serveKvV2(mount.store, rest, request, now)
    if (mount.store instanceof KvV1Store) return serveKvV1(mount.store, rest, request)
    return unsupportedPath
  })

const noRoute = (path: string): DevResponse =>
  failure(404, `no handler for route ${JSON.stringify(path)}. route entry not found.`)
