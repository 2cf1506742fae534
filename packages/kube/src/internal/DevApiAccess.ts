/**
 * Who may use the Kubernetes dev API and for what: bearer-token authentication, its fixed authorization rule,
 * TokenRequest, TokenReview and the self reviews.
 */
import * as Crypto from "node:crypto"
import { isResponse, parseBody } from "./DevApiObjects.ts"
import { findResource } from "./DevApiResources.ts"
import type { ApiRequest, DevApiState, Principal } from "./DevApiState.ts"
import {
  authenticationGroup,
  authorizationGroup,
  isRecord,
  ok,
  rbacGroup,
  sameSecret,
  timestamp
} from "./DevApiState.ts"
import type { ApiResponse } from "./KubeStatus.ts"
import * as Status from "./KubeStatus.ts"
import type { ServiceAccountClaims } from "./ServiceAccountTokens.ts"

/** The username the admin token authenticates as. */
export const adminUsername = "cloudtaser-dev:admin"

const serviceAccountSpec = findResource("", "v1", "serviceaccounts")!
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

/** What a request would do, as authorization sees it. */
export interface Attributes {
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
export const authorize = (state: DevApiState, principal: Principal, attributes: Attributes): boolean => {
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

/** SelfSubjectReview: who the caller is. */
export const selfSubjectReview = (principal: Principal): ApiResponse =>
  ok({
    kind: "SelfSubjectReview",
    apiVersion: `${authenticationGroup}/v1`,
    metadata: { creationTimestamp: null },
    status: { userInfo: userInfo(principal) }
  }, 201)

/** SelfSubjectAccessReview: whether the caller may do what the review describes. */
export const selfSubjectAccessReview = (state: DevApiState, principal: Principal, request: ApiRequest): ApiResponse => {
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

/** Who the request's bearer token belongs to, if anyone the dev API knows. */
export const authenticate = (state: DevApiState, request: ApiRequest, nowMillis: number): Principal | undefined => {
  // As on a real API server, a client certificate from the cluster's CA is tried before a bearer token.
  if (request.clientCommonName !== undefined) {
    return request.clientCommonName === adminUsername
      ? adminPrincipal
      : { username: request.clientCommonName, uid: "", groups: ["system:authenticated"], extra: {} }
  }
  const header = request.authorization ?? ""
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) return undefined
  const review = reviewToken(state, match[1]!, [], nowMillis)
  return review.authenticated ? review.principal : undefined
}

const maxExpirationSeconds = 2 ** 32

/** TokenRequest: issues a token for a service account that exists. */
export const tokenRequest = (
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

/** TokenReview: who a token belongs to, for the audiences asked about. */
export const tokenReview = (state: DevApiState, request: ApiRequest, nowMillis: number): ApiResponse => {
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
