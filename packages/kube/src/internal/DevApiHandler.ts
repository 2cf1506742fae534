/**
 * The Kubernetes dev API's request handling: authenticates, routes to discovery, the stored resources, TokenRequest,
 * TokenReview and the self reviews, checks authorization, and answers with the real API's status codes and shapes.
 */
import {
  authenticate,
  authorize,
  selfSubjectAccessReview,
  selfSubjectReview,
  tokenRequest,
  tokenReview
} from "./DevApiAccess.ts"
import type { Attributes } from "./DevApiAccess.ts"
import { discovery } from "./DevApiDiscovery.ts"
import {
  createObject,
  deleteObject,
  isResponse,
  matchesSelectors,
  parseBody,
  patchObject,
  replaceObject,
  table,
  wantsTable,
  withoutKind
} from "./DevApiObjects.ts"
import type { ResourceSpec } from "./DevApiResources.ts"
import { apiVersionOf, findResource } from "./DevApiResources.ts"
import type { ApiRequest, DevApiState } from "./DevApiState.ts"
import { authenticationGroup, authorizationGroup, ok } from "./DevApiState.ts"
import { startWatch } from "./DevApiWatch.ts"
import type { ApiResponse } from "./KubeStatus.ts"
import * as Status from "./KubeStatus.ts"

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
