/**
 * The JSON bodies Vault's API documents, decoded from Vault's snake_case into the client's camelCase.
 *
 * Fields Vault may leave out in older versions get defaults; fields the client has no use for are dropped, and the
 * token lookup's `id` (the token itself) is never decoded.
 */
import * as Schema from "effect/Schema"

const renamed = <S extends Schema.Schema.Any>(key: string, schema: S) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

const defaulted = <S extends Schema.Schema.AnyNoContext>(key: string, schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, nullable: true }).pipe(Schema.fromKey(key))

const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })
const NullableStringMap = Schema.NullOr(StringMap)

// Vault answers some list-valued role fields with a comma-separated string when they were written as one.
const StringList = Schema.transform(
  Schema.Union(Schema.Array(Schema.String), Schema.String),
  Schema.Array(Schema.String),
  {
    strict: true,
    decode: (value) =>
      typeof value === "string" ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : value,
    encode: (value) => value
  }
)

/** `GET sys/health`, at any of its status codes. */
export const Health = Schema.Struct({
  initialized: Schema.Boolean,
  sealed: Schema.Boolean,
  standby: defaulted("standby", Schema.Boolean, () => false),
  performanceStandby: defaulted("performance_standby", Schema.Boolean, () => false),
  version: defaulted("version", Schema.String, () => ""),
  clusterName: defaulted("cluster_name", Schema.String, () => ""),
  clusterId: defaulted("cluster_id", Schema.String, () => ""),
  serverTimeUtc: defaulted("server_time_utc", Schema.Number, () => 0)
})

/** One mount of a secrets engine or an auth method. */
export const MountEntry = Schema.Struct({
  type: Schema.String,
  description: defaulted("description", Schema.String, () => ""),
  accessor: defaulted("accessor", Schema.String, () => ""),
  local: defaulted("local", Schema.Boolean, () => false),
  sealWrap: defaulted("seal_wrap", Schema.Boolean, () => false),
  options: defaulted("options", StringMap, () => ({}))
})

/** `GET sys/mounts` and `GET sys/auth`: a table of mount path to mount, under `data`. */
export const MountTable = Schema.Struct({
  data: Schema.Record({ key: Schema.String, value: MountEntry })
})

/** `GET auth/<mount>/config` for the Kubernetes auth method. */
export const KubernetesAuthConfigData = Schema.Struct({
  kubernetesHost: renamed("kubernetes_host", Schema.String),
  kubernetesCaCert: defaulted("kubernetes_ca_cert", Schema.String, () => ""),
  pemKeys: defaulted("pem_keys", Schema.Array(Schema.String), () => []),
  issuer: defaulted("issuer", Schema.String, () => ""),
  disableIssValidation: defaulted("disable_iss_validation", Schema.Boolean, () => true),
  disableLocalCaJwt: defaulted("disable_local_ca_jwt", Schema.Boolean, () => false),
  tokenReviewerJwtSet: defaulted("token_reviewer_jwt_set", Schema.Boolean, () => false)
})
export const KubernetesAuthConfig = Schema.Struct({ data: KubernetesAuthConfigData })

/** `GET auth/<mount>/role/<name>` for the Kubernetes auth method. */
export const KubernetesRoleData = Schema.Struct({
  boundServiceAccountNames: renamed("bound_service_account_names", StringList),
  boundServiceAccountNamespaces: renamed("bound_service_account_namespaces", StringList),
  audience: defaulted("audience", Schema.String, () => ""),
  aliasNameSource: defaulted("alias_name_source", Schema.String, () => ""),
  tokenPolicies: defaulted("token_policies", StringList, () => []),
  policies: defaulted("policies", StringList, () => []),
  tokenTtl: defaulted("token_ttl", Schema.Number, () => 0),
  tokenMaxTtl: defaulted("token_max_ttl", Schema.Number, () => 0)
})
export const KubernetesRole = Schema.Struct({ data: KubernetesRoleData })

/** The `auth` block of a login or a token renewal. */
export const Auth = Schema.Struct({
  clientToken: renamed("client_token", Schema.Redacted(Schema.String)),
  accessor: defaulted("accessor", Schema.String, () => ""),
  policies: defaulted("policies", Schema.Array(Schema.String), () => []),
  tokenPolicies: defaulted("token_policies", Schema.Array(Schema.String), () => []),
  metadata: defaulted("metadata", StringMap, () => ({})),
  leaseDuration: renamed("lease_duration", Schema.Number),
  renewable: Schema.Boolean
})

/** `POST auth/<mount>/login` and `POST auth/token/renew-self`. */
export const AuthResponse = Schema.Struct({ auth: Auth })

/** `GET auth/token/lookup-self`; `id`, the token itself, is left out on purpose. */
export const TokenLookupData = Schema.Struct({
  accessor: defaulted("accessor", Schema.String, () => ""),
  displayName: defaulted("display_name", Schema.String, () => ""),
  policies: defaulted("policies", Schema.Array(Schema.String), () => []),
  path: defaulted("path", Schema.String, () => ""),
  ttl: Schema.Number,
  creationTtl: defaulted("creation_ttl", Schema.Number, () => 0),
  explicitMaxTtl: defaulted("explicit_max_ttl", Schema.Number, () => 0),
  expireTime: defaulted("expire_time", Schema.NullOr(Schema.String), () => null),
  renewable: defaulted("renewable", Schema.Boolean, () => false),
  orphan: defaulted("orphan", Schema.Boolean, () => false),
  numUses: defaulted("num_uses", Schema.Number, () => 0),
  entityId: defaulted("entity_id", Schema.String, () => ""),
  type: defaulted("type", Schema.String, () => "service"),
  meta: defaulted("meta", NullableStringMap, () => null)
})
export const TokenLookup = Schema.Struct({ data: TokenLookupData })

/** `GET sys/policies/acl/<name>`. */
export const Policy = Schema.Struct({
  data: Schema.Struct({ name: Schema.String, policy: Schema.String })
})

/** Any `LIST` answer. */
export const KeyList = Schema.Struct({
  data: Schema.Struct({ keys: Schema.Array(Schema.String) })
})

const KvVersionFields = {
  version: Schema.Number,
  createdTime: renamed("created_time", Schema.String),
  deletionTime: defaulted("deletion_time", Schema.String, () => ""),
  destroyed: defaulted("destroyed", Schema.Boolean, () => false),
  customMetadata: defaulted("custom_metadata", StringMap, () => ({}))
}

/** The metadata of one KV v2 version. */
export const KvVersionData = Schema.Struct(KvVersionFields)

/** `POST <mount>/data/<path>`. */
export const KvWritten = Schema.Struct({ data: KvVersionData })

/** `GET <mount>/data/<path>`. */
export const KvRead = Schema.Struct({
  data: Schema.Struct({
    data: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    metadata: KvVersionData
  })
})

/** `GET <mount>/metadata/<path>`. */
export const KvMetadataData = Schema.Struct({
  currentVersion: renamed("current_version", Schema.Number),
  oldestVersion: defaulted("oldest_version", Schema.Number, () => 0),
  maxVersions: defaulted("max_versions", Schema.Number, () => 0),
  casRequired: defaulted("cas_required", Schema.Boolean, () => false),
  deleteVersionAfter: defaulted("delete_version_after", Schema.String, () => "0s"),
  createdTime: defaulted("created_time", Schema.String, () => ""),
  updatedTime: defaulted("updated_time", Schema.String, () => ""),
  customMetadata: defaulted("custom_metadata", StringMap, () => ({})),
  versions: defaulted(
    "versions",
    Schema.Record({
      key: Schema.String,
      value: Schema.Struct({
        createdTime: renamed("created_time", Schema.String),
        deletionTime: defaulted("deletion_time", Schema.String, () => ""),
        destroyed: defaulted("destroyed", Schema.Boolean, () => false)
      })
    }),
    () => ({})
  )
})
export const KvMetadata = Schema.Struct({ data: KvMetadataData })
