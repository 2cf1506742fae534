/**
 * What the Kubernetes dev API's modules share: a request as they read it, the state one instance serves from, who is
 * asking, and small helpers for answers.
 */
import * as Crypto from "node:crypto"
import type { DevApiStore } from "./DevApiStore.ts"
import type { ApiResponse } from "./KubeStatus.ts"
import type { TokenAuthority } from "./ServiceAccountTokens.ts"

/** One HTTP request, reduced to what the dev API reads. */
export interface ApiRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly accept: string
  readonly contentType: string
  readonly authorization: string | undefined
  /** The common name of a client certificate the server's CA issued, when the client presented one. */
  readonly clientCommonName?: string | undefined
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

/** The group of TokenRequest, TokenReview and SelfSubjectReview. */
export const authenticationGroup = "authentication.k8s.io"
/** The group of SelfSubjectAccessReview. */
export const authorizationGroup = "authorization.k8s.io"
/** The group of ClusterRoleBinding. */
export const rbacGroup = "rbac.authorization.k8s.io"

/** Whether `u` is a JSON object. */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** RFC 3339 at whole seconds, as Kubernetes writes timestamps. */
export const timestamp = (nowMillis: number) =>
  new Date(Math.floor(nowMillis / 1000) * 1000).toISOString().replace(".000Z", "Z")

/** A successful answer. */
export const ok = (body: unknown, status = 200): ApiResponse => ({ status, body })

/** Compares two secrets in constant time. */
export const sameSecret = (a: string, b: string) => {
  const left = Crypto.createHash("sha256").update(a).digest()
  const right = Crypto.createHash("sha256").update(b).digest()
  return Crypto.timingSafeEqual(left, right)
}
