/**
 * The failures a Vault call can end in, each saying what happened and what to check next.
 *
 * None of them carries the Vault token: the request that failed is described by its method, its path and the
 * address of Vault only.
 */
import * as Schema from "effect/Schema"

const Request = {
  /** The Vault address the request went to, e.g. `https://vault.example:8200`. */
  address: Schema.String,
  /** The HTTP method sent. */
  method: Schema.String,
  /** The API path below `/v1/`, e.g. `secret/data/app`. */
  path: Schema.String
}

const vaultSays = (errors: ReadonlyArray<string>): string =>
  errors.length === 0 ? "" : ` (Vault said: ${errors.map((error) => error.trim()).join("; ")})`

/**
 * Vault answered 403: the token is missing, invalid, expired or revoked, or its policies do not grant the capability
 * the call needs on the path.
 */
export class VaultPermissionDenied extends Schema.TaggedError<VaultPermissionDenied>()("VaultPermissionDenied", {
  ...Request,
  /** The capabilities the call needs on the path, as a phrase: `read`, `create or update`, `sudo and update`. */
  capability: Schema.String,
  errors: Schema.Array(Schema.String),
  /** False when the call went out without a token because none was configured. */
  tokenSent: Schema.optionalWith(Schema.Boolean, { default: () => true })
}) {
  override get message(): string {
    if (!this.tokenSent) {
      return `Vault at ${this.address} denied ${this.method} ${this.path}${vaultSays(this.errors)}: no token was ` +
        `sent; set VAULT_TOKEN (or log in first) and retry`
    }
    return `Vault at ${this.address} denied ${this.method} ${this.path}${vaultSays(this.errors)}: ` +
      `either the token is invalid, expired or revoked, or its policies do not grant ${this.capability} on ` +
      `${this.path}; check the token (vault token lookup) and the policies attached to it`
  }
}

/**
 * Vault refused a login (400 or 403): the JWT is invalid or expired, the role does not exist, or the role is not bound
 * to the service account or its namespace.
 */
export class VaultLoginDenied extends Schema.TaggedError<VaultLoginDenied>()("VaultLoginDenied", {
  ...Request,
  role: Schema.String,
  status: Schema.Number,
  errors: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Vault at ${this.address} refused the login at ${this.path} for role "${this.role}"` +
      `${vaultSays(this.errors)}: check that the role exists, that its bound service account names and namespaces ` +
      `include this pod's service account, and that the service account token is current and has the role's audience`
  }
}

/** Vault answered 404: nothing exists at the path, or no secrets engine or auth method is mounted there. */
export class VaultNotFound extends Schema.TaggedError<VaultNotFound>()("VaultNotFound", {
  ...Request,
  errors: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `nothing found at ${this.path} on Vault at ${this.address}${vaultSays(this.errors)}: check the path, ` +
      `and that a secrets engine or auth method is enabled at its mount`
  }
}

/**
 * Vault answered 400: it refused the request as invalid, for instance a KV v2 write whose check-and-set version did
 * not match the current version.
 */
export class VaultBadRequest extends Schema.TaggedError<VaultBadRequest>()("VaultBadRequest", {
  ...Request,
  errors: Schema.Array(Schema.String)
}) {
  /** True when the refusal is a KV v2 check-and-set mismatch. */
  get checkAndSetMismatch(): boolean {
    return this.errors.some((error) => /check-and-set/i.test(error))
  }

  override get message(): string {
    const next = this.checkAndSetMismatch
      ? "read the secret's current version and write again with cas set to it"
      : isKvUpgradeMessage(this.errors)
      ? "the KV v2 engine is still upgrading its storage; retry in a few seconds"
      : "fix the request's parameters"
    return `Vault at ${this.address} refused ${this.method} ${this.path}${vaultSays(this.errors)}: ${next}`
  }
}

/** Vault answered 503 because it is sealed. */
export class VaultSealed extends Schema.TaggedError<VaultSealed>()("VaultSealed", Request) {
  override get message(): string {
    return `Vault at ${this.address} is sealed and cannot serve ${this.method} ${this.path}: unseal it ` +
      `(vault operator unseal) and retry`
  }
}

/**
 * Vault answered from a standby node that did not forward the request (429 from sys/health, or 503 when no active
 * node could be reached).
 */
export class VaultStandby extends Schema.TaggedError<VaultStandby>()("VaultStandby", {
  ...Request,
  status: Schema.Number,
  errors: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Vault at ${this.address} is a standby node and did not serve ${this.method} ${this.path} ` +
      `(status ${this.status})${vaultSays(this.errors)}: point the address at the active node or at the ` +
      `cluster's load balancer, and check that the cluster has an active node`
  }
}

/** Vault could not be reached: the connection was refused, timed out, reset or the host name did not resolve. */
export class VaultUnreachable extends Schema.TaggedError<VaultUnreachable>()("VaultUnreachable", {
  ...Request,
  reason: Schema.Literal("ConnectionRefused", "HostNotFound", "ConnectionReset", "Timeout", "Other"),
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "ConnectionRefused":
        return `could not connect to Vault at ${this.address}: connection refused; check VAULT_ADDR and that ` +
          `Vault is listening`
      case "HostNotFound":
        return `could not connect to Vault at ${this.address}: the host name does not resolve (${this.detail}); ` +
          `check VAULT_ADDR`
      case "ConnectionReset":
        return `the connection to Vault at ${this.address} was closed during ${this.method} ${this.path} ` +
          `(${this.detail}); check that the address speaks the scheme it names (http or https) and retry`
      case "Timeout":
        return `Vault at ${this.address} did not answer ${this.method} ${this.path} in time (${this.detail}); ` +
          `check the network path to Vault and its load`
      case "Other":
        return `could not reach Vault at ${this.address} for ${this.method} ${this.path}: ${this.detail}; ` +
          `check VAULT_ADDR and the network path to Vault`
    }
  }
}

/** The TLS handshake with Vault failed, most often because the CA bundle does not match Vault's certificate. */
export class VaultTlsError extends Schema.TaggedError<VaultTlsError>()("VaultTlsError", {
  ...Request,
  detail: Schema.String
}) {
  override get message(): string {
    return `TLS with Vault at ${this.address} failed: ${this.detail}; check the CA bundle (VAULT_CACERT) holds the ` +
      `CA that issued Vault's certificate, and that the certificate names the host in VAULT_ADDR`
  }
}

/**
 * Vault answered with a status or a body this client does not expect for the call: an unexpected status code, or a
 * body that is not the JSON the API documents.
 */
export class VaultUnexpectedResponse extends Schema.TaggedError<VaultUnexpectedResponse>()(
  "VaultUnexpectedResponse",
  {
    ...Request,
    status: Schema.Number,
    detail: Schema.String
  }
) {
  override get message(): string {
    return `Vault at ${this.address} answered ${this.method} ${this.path} with status ${this.status}: ` +
      `${this.detail}; check that VAULT_ADDR points at Vault and look at Vault's server log`
  }
}

/**
 * A path given to the client has a `.` or `..` segment, which URL resolution would turn into a request for another
 * path than the one named; the client refuses it before sending anything.
 */
export class VaultInvalidPath extends Schema.TaggedError<VaultInvalidPath>()("VaultInvalidPath", {
  ...Request
}) {
  override get message(): string {
    return `refused to send ${this.method} ${this.path} to Vault at ${this.address}: the path has a "." or ".." ` +
      `segment; name the path without them`
  }
}

/** The client configuration is unusable, e.g. the address is not a URL or the CA bundle cannot be read. */
export class VaultConfigError extends Schema.TaggedError<VaultConfigError>()("VaultConfigError", {
  detail: Schema.String
}) {
  override get message(): string {
    return `the Vault client configuration is invalid: ${this.detail}`
  }
}

/** Every failure of a Vault call, as a schema so that it can cross a wire and be decoded on the other side. */
export const VaultError = Schema.Union(
  VaultPermissionDenied,
  VaultLoginDenied,
  VaultNotFound,
  VaultBadRequest,
  VaultSealed,
  VaultStandby,
  VaultUnreachable,
  VaultTlsError,
  VaultUnexpectedResponse,
  VaultInvalidPath
)

/** Every failure of a Vault call. */
export type VaultError =
  | VaultPermissionDenied
  | VaultLoginDenied
  | VaultNotFound
  | VaultBadRequest
  | VaultSealed
  | VaultStandby
  | VaultUnreachable
  | VaultTlsError
  | VaultUnexpectedResponse
  | VaultInvalidPath

/** True when Vault's error says a KV v2 mount is still moving its data to the versioned layout. */
export const isKvUpgradeMessage = (errors: ReadonlyArray<string>): boolean =>
  errors.some((error) => /upgrad(e|ing) from non-versioned to versioned data/i.test(error))
