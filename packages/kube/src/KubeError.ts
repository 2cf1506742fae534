/**
 * The failures of the Kubernetes client, each naming the kubeconfig context, the API server and the object involved,
 * why it failed and what to check. None of them carries a token or any other credential.
 */
import { Schema } from "effect"

const where = (context: string, server: string) => `context "${context}" (API server ${server})`

/** The kubeconfig could not be read, or does not have the context asked for. */
export class KubeConfigError extends Schema.TaggedError<KubeConfigError>()("KubeConfigError", {
  reason: Schema.Literal("unreadable", "no_context", "no_cluster"),
  source: Schema.String,
  context: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "unreadable":
        return `cannot load the kubeconfig from ${this.source}: ${this.detail}; check the file exists and is a ` +
          "kubeconfig (kubectl config view --kubeconfig FILE)"
      case "no_context":
        return `the kubeconfig from ${this.source} has no context "${this.context ?? ""}": ${this.detail}; list ` +
          "the contexts with `kubectl config get-contexts` and pass one of them"
      case "no_cluster":
        return `the context "${this.context ?? ""}" in the kubeconfig from ${this.source} names no usable cluster: ` +
          `${this.detail}; fix its cluster entry or pick another context`
    }
  }
}

const objectFields = {
  context: Schema.String,
  server: Schema.String,
  /** What was being done, such as `get secret cloudtaser/broker-tls`. */
  operation: Schema.String,
  /** The API server's own explanation, from its Status message. */
  detail: Schema.String
}

/** The object does not exist. */
export class KubeNotFound extends Schema.TaggedError<KubeNotFound>()("KubeNotFound", objectFields) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: not found (${this.detail}); check the ` +
      "namespace and name, and that it was created"
  }
}

/** The object exists already (a create). */
export class KubeAlreadyExists extends Schema.TaggedError<KubeAlreadyExists>()("KubeAlreadyExists", objectFields) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: it already exists (${this.detail}); ` +
      "replace or delete it instead of creating it"
  }
}

/** The object changed between read and write (a stale resourceVersion). */
export class KubeConflict extends Schema.TaggedError<KubeConflict>()("KubeConflict", objectFields) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: someone else changed it meanwhile ` +
      `(${this.detail}); read it again and retry`
  }
}

/** The user of the context may not do this. */
export class KubeForbidden extends Schema.TaggedError<KubeForbidden>()("KubeForbidden", {
  ...objectFields,
  /** A `kubectl auth can-i` line that checks the permission. */
  check: Schema.String
}) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: forbidden (${this.detail}); grant the ` +
      `context's user that permission with RBAC, or use a context that has it (check: ${this.check})`
  }
}

/** The API server did not accept the context's credentials. */
export class KubeUnauthorized extends Schema.TaggedError<KubeUnauthorized>()("KubeUnauthorized", objectFields) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: the API server did not accept the ` +
      "credentials (401 Unauthorized); the token or client certificate may have expired or belong to another " +
      "cluster: refresh the kubeconfig's credentials or pick another context"
  }
}

/** The API server could not be reached, or its certificate is not trusted. */
export class KubeUnreachable extends Schema.TaggedError<KubeUnreachable>()("KubeUnreachable", {
  ...objectFields,
  reason: Schema.Literal("refused", "unresolvable", "timeout", "untrusted_certificate", "network")
}) {
  override get message(): string {
    const subject = `${this.operation}: cannot reach the API server ${this.server} of context "${this.context}"`
    switch (this.reason) {
      case "refused":
        return `${subject}: connection refused; check the cluster is running and that the kubeconfig's server ` +
          "address and port are right"
      case "unresolvable":
        return `${subject}: the host name does not resolve (${this.detail}); check the server address in the ` +
          "kubeconfig and your DNS or VPN"
      case "timeout":
        return `${subject}: no answer in time (${this.detail}); check the network path to the API server ` +
          "(firewall, VPN, private endpoint)"
      case "untrusted_certificate":
        return `${subject}: its TLS certificate is not trusted (${this.detail}); check the cluster's ` +
          "certificate-authority-data in the kubeconfig belongs to this server"
      case "network":
        return `${subject}: ${this.detail}; check the network path to the API server`
    }
  }
}

/** The kubeconfig's credential plugin (`exec`) could not produce credentials. */
export class KubeCredentialsFailed extends Schema.TaggedError<KubeCredentialsFailed>()("KubeCredentialsFailed", {
  ...objectFields,
  command: Schema.String
}) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: the kubeconfig's credential plugin ` +
      `\`${this.command}\` failed (${this.detail}); run it by hand to see why, often a login to the cloud provider ` +
      "has expired or its CLI is not installed"
  }
}

/** The API server refused the request for another reason (invalid object, server error). */
export class KubeRequestFailed extends Schema.TaggedError<KubeRequestFailed>()("KubeRequestFailed", {
  ...objectFields,
  status: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.operation} in ${where(this.context, this.server)}: the API server answered ${this.status} ` +
      `${this.reason} (${this.detail}); ${
        this.status >= 500 ? "the API server failed: retry later or check its health" : "fix the request"
      }`
  }
}

/** Any failure of a request to the API server. */
export type KubeError =
  | KubeNotFound
  | KubeAlreadyExists
  | KubeConflict
  | KubeForbidden
  | KubeUnauthorized
  | KubeUnreachable
  | KubeCredentialsFailed
  | KubeRequestFailed
