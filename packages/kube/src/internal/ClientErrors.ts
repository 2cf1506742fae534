/**
 * Turns what `@kubernetes/client-node` throws (an ApiException with the server's Status, or a network error) into the
 * client's tagged errors, keeping only the server's message and the error code: never a header or a token.
 */
import { ApiException } from "@kubernetes/client-node"
import type { KubeError } from "../KubeError.ts"
import {
  KubeAlreadyExists,
  KubeConflict,
  KubeCredentialsFailed,
  KubeForbidden,
  KubeNotFound,
  KubeRequestFailed,
  KubeUnauthorized,
  KubeUnreachable
} from "../KubeError.ts"

/** A request, described for errors and for the `kubectl auth can-i` hint. */
export interface Operation {
  readonly verb: string
  /** Plural resource, such as `secrets` or `clusterrolebindings.rbac.authorization.k8s.io`. */
  readonly resource: string
  readonly namespace?: string | undefined
  readonly name?: string | undefined
}

/** Where requests go: the context's name and its API server, and the credential plugin it runs, if any. */
export interface Target {
  readonly context: string
  readonly server: string
  readonly execCommand: string | undefined
}

const singular: Record<string, string> = {
  namespaces: "namespace",
  secrets: "secret",
  configmaps: "config map",
  serviceaccounts: "service account",
  "serviceaccounts/token": "token for service account",
  "clusterrolebindings.rbac.authorization.k8s.io": "cluster role binding",
  "tokenreviews.authentication.k8s.io": "token review"
}

/** `get secret cloudtaser/broker-tls`, `list secrets in cloudtaser`, `get server version`. */
export const describe = (operation: Operation): string => {
  if (operation.resource === "version") return "get server version"
  if (operation.name !== undefined) {
    const object = operation.namespace === undefined ? operation.name : `${operation.namespace}/${operation.name}`
    return `${operation.verb} ${singular[operation.resource] ?? operation.resource} ${object}`
  }
  const what = operation.verb === "list" ? operation.resource : singular[operation.resource] ?? operation.resource
  return `${operation.verb} ${what}${operation.namespace === undefined ? "" : ` in ${operation.namespace}`}`
}

const canI = (context: string, operation: Operation): string =>
  [
    "kubectl auth can-i",
    operation.verb,
    operation.resource,
    operation.namespace ? `-n ${operation.namespace}` : "",
    `--context ${context}`
  ].filter((part) => part !== "").join(" ")

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const statusOf = (body: unknown): { readonly message: string; readonly reason: string } => {
  let parsed = body
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body)
    } catch {
      parsed = undefined
    }
  }
  return isRecord(parsed)
    ? {
      message: typeof parsed.message === "string" ? parsed.message : "",
      reason: typeof parsed.reason === "string" ? parsed.reason : ""
    }
    : { message: "", reason: "" }
}

const tlsCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_SIGNATURE_FAILURE"
])

const codeOf = (cause: unknown): string | undefined => {
  for (let current: unknown = cause, depth = 0; isRecord(current) && depth < 4; depth++) {
    if (typeof current.code === "string" && current.code !== "") return current.code
    current = current.cause
  }
  return undefined
}

// Requests fail with node-fetch's FetchError or AbortError; anything else thrown before the request is sent comes
// from preparing its credentials, which with an exec plugin means running the plugin.
const isPluginFailure = (cause: unknown) =>
  !(cause instanceof ApiException) && !(isRecord(cause) && (cause.name === "FetchError" || cause.name === "AbortError"))

const pluginDetail = (cause: unknown): string => {
  if (isRecord(cause) && typeof cause.syscall === "string" && cause.syscall.startsWith("spawn")) {
    return `it cannot be run: ${String(cause.code ?? "error")}`
  }
  if (cause instanceof SyntaxError) return "its output is not an ExecCredential in JSON"
  const first = (cause instanceof Error ? cause.message : String(cause)).trim().split("\n")[0] ?? ""
  return first === "" ? "it exited with an error" : `it said: ${first.slice(0, 200)}`
}

/** Classifies a failed request. */
export const toKubeError = (cause: unknown, target: Target, operation: Operation): KubeError => {
  const fields = { context: target.context, server: target.server, operation: describe(operation) }
  if (target.execCommand !== undefined && isPluginFailure(cause)) {
    return new KubeCredentialsFailed({ ...fields, command: target.execCommand, detail: pluginDetail(cause) })
  }
  if (cause instanceof ApiException) {
    const status = statusOf(cause.body)
    const detail = status.message || `HTTP ${cause.code}`
    switch (cause.code) {
      case 401:
        return new KubeUnauthorized({ ...fields, detail })
      case 403:
        return new KubeForbidden({ ...fields, detail, check: canI(target.context, operation) })
      case 404:
        return new KubeNotFound({ ...fields, detail })
      case 409:
        return status.reason === "AlreadyExists"
          ? new KubeAlreadyExists({ ...fields, detail })
          : new KubeConflict({ ...fields, detail })
      default:
        return new KubeRequestFailed({ ...fields, detail, status: cause.code, reason: status.reason || "Failure" })
    }
  }
  const code = codeOf(cause)
  const detail = code ?? (cause instanceof Error ? cause.name : "unknown error")
  if (code !== undefined && tlsCodes.has(code)) {
    return new KubeUnreachable({ ...fields, detail: code, reason: "untrusted_certificate" })
  }
  switch (code) {
    case "ECONNREFUSED":
      return new KubeUnreachable({ ...fields, detail: code, reason: "refused" })
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new KubeUnreachable({ ...fields, detail: code, reason: "unresolvable" })
    case "ETIMEDOUT":
      return new KubeUnreachable({ ...fields, detail: code, reason: "timeout" })
    default:
      return new KubeUnreachable({ ...fields, detail, reason: "network" })
  }
}
