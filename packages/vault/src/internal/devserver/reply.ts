/**
 * The request and response shapes of the Vault dev server double, and Vault's JSON envelope and error bodies.
 */
import * as Crypto from "node:crypto"

/** The operations Vault's HTTP layer knows; `LIST` also arrives as `GET ...?list=true`. */
export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "LIST"

/** One parsed request: `path` is relative to `/v1/`, with no leading slash. */
export interface DevRequest {
  readonly method: Method
  readonly path: string
  readonly query: URLSearchParams
  readonly body: Record<string, unknown>
  readonly token: string | undefined
  readonly contentType: string | undefined
  /** The `X-Vault-Wrap-TTL` header, when a client asks for a wrapped response. */
  readonly wrapTtl: string | undefined
}

/** One response: no `body` means an empty response (204 or a HEAD). */
export interface DevResponse {
  readonly status: number
  readonly body?: unknown
}

/** The fields of Vault's response envelope that a handler may set. */
export interface EnvelopeFields {
  readonly data?: unknown
  readonly auth?: unknown
  readonly warnings?: ReadonlyArray<string> | null
  readonly lease_duration?: number
  readonly renewable?: boolean
  readonly mount_type?: string
}

/** A JSON body in Vault's envelope. */
export const envelope = (fields: EnvelopeFields, extra?: Record<string, unknown>): Record<string, unknown> => ({
  ...extra,
  request_id: Crypto.randomUUID(),
  lease_id: "",
  renewable: fields.renewable ?? false,
  lease_duration: fields.lease_duration ?? 0,
  data: fields.data ?? null,
  wrap_info: null,
  warnings: fields.warnings && fields.warnings.length > 0 ? fields.warnings : null,
  auth: fields.auth ?? null,
  mount_type: fields.mount_type ?? ""
})

/** 200 with `data` in the envelope. */
export const ok = (fields: EnvelopeFields, extra?: Record<string, unknown>): DevResponse => ({
  status: 200,
  body: envelope(fields, extra)
})

/** 204: the write succeeded and has nothing to say. */
export const noContent: DevResponse = { status: 204 }

/** An error body as Vault sends it. */
export const failure = (status: number, ...errors: ReadonlyArray<string>): DevResponse => ({
  status,
  body: { errors }
})

/** 400 with one message. */
export const badRequest = (message: string): DevResponse => failure(400, message)

/** 404 with an empty error list, Vault's answer for a path that holds nothing. */
export const notFound: DevResponse = failure(404)

/** 403: Vault gives one answer for a missing, unknown, expired or insufficient token. */
export const permissionDenied: DevResponse = failure(403, "permission denied")

/** 405: the path exists but does not support the operation. */
export const unsupportedOperation: DevResponse = failure(405, "unsupported operation")

/** 404 for a path inside a mount that no handler serves. */
export const unsupportedPath: DevResponse = failure(404, "unsupported path")

/** 503 while sealed. */
export const sealed: DevResponse = failure(503, "Vault is sealed")

/** The value of a field that must be a string, if it is one. */
export const stringField = (body: Record<string, unknown>, key: string): string | undefined => {
  const value = body[key]
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined
}

/** A list field that Vault accepts as a JSON array or as a comma-separated string. */
export const listField = (body: Record<string, unknown>, key: string): Array<string> | undefined => {
  const value = body[key]
  if (value === undefined || value === null) return undefined
  if (Array.isArray(value)) return value.map((item) => String(item).trim()).filter((item) => item.length > 0)
  if (typeof value === "string") return value.split(",").map((item) => item.trim()).filter((item) => item.length > 0)
  return [String(value)]
}

/** A boolean field, accepting Vault's string forms. */
export const booleanField = (body: Record<string, unknown>, key: string): boolean | undefined => {
  const value = body[key]
  if (typeof value === "boolean") return value
  if (value === "true" || value === "1" || value === 1) return true
  if (value === "false" || value === "0" || value === 0) return false
  return undefined
}

/** An integer field, accepting numbers and numeric strings. */
export const integerField = (body: Record<string, unknown>, key: string): number | undefined => {
  const value = body[key]
  if (typeof value === "number" && Number.isFinite(value)) return Math.trunc(value)
  if (typeof value === "string" && /^-?\d+$/.test(value.trim())) return Number.parseInt(value, 10)
  return undefined
}

/** A random identifier shaped like Vault's. */
export const randomId = (): string => Crypto.randomUUID()

/** Vault's time format: RFC 3339 with nanoseconds. */
export const formatTime = (millis: number): string =>
  new Date(millis).toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z")
