/**
 * The in-memory state of one Vault dev server double: seal state, mounts, policies and tokens.
 */
import * as Crypto from "node:crypto"
import type { KubernetesAuthState } from "./kubernetesAuth.ts"
import { KvV1Store, KvV2Store } from "./kv.ts"
import { defaultPolicyText, parsePolicy } from "./policy.ts"
import type { Policy } from "./policy.ts"
import { randomId } from "./reply.ts"

/** Vault's system-wide default and maximum token TTL: 768 hours. */
export const systemMaxTtl = 768 * 3600

/** One token as Vault's token store keeps it. Times are epoch milliseconds, TTLs seconds. */
export interface TokenEntry {
  readonly id: string
  readonly accessor: string
  readonly policies: ReadonlyArray<string>
  readonly displayName: string
  readonly meta: Readonly<Record<string, string>> | null
  numUses: number
  readonly creationTime: number
  readonly creationTtl: number
  issueTime: number
  expireAt: number | undefined
  readonly explicitMaxTtl: number
  /** The maximum TTL renewals may reach (0: the system maximum); unlike `explicitMaxTtl`, not shown in lookups. */
  readonly maxTtl: number
  readonly period: number
  readonly renewable: boolean
  readonly path: string
  readonly orphan: boolean
  readonly parent: string | undefined
  readonly entityId: string
}

/** A secrets engine mount. */
export interface SecretMount {
  readonly path: string
  readonly type: "kv" | "system" | "identity"
  version: 1 | 2 | undefined
  description: string
  readonly accessor: string
  readonly uuid: string
  store: KvV1Store | KvV2Store | undefined
  /** Requests a freshly enabled KV v2 mount still answers with Vault's "upgrading" error. */
  upgradeRequestsLeft: number
  defaultLeaseTtl: number
  maxLeaseTtl: number
}

/** An auth method mount. */
export interface AuthMount {
  readonly path: string
  readonly type: "token" | "kubernetes"
  description: string
  readonly accessor: string
  readonly uuid: string
  readonly kubernetes: KubernetesAuthState | undefined
  defaultLeaseTtl: number
  maxLeaseTtl: number
}

/** How the double presents itself in `sys/health`. */
export interface HealthMode {
  readonly initialized: boolean
  readonly standby: boolean
  readonly performanceStandby: boolean
}

/** The options the state is created with. */
export interface DevStateOptions {
  readonly rootToken: string
  readonly health: HealthMode
  readonly kvUpgradeRequests: number
  readonly now: number
}

/** Everything one dev server holds. */
export class DevState {
  readonly rootToken: string
  readonly unsealKey: string = Crypto.randomBytes(32).toString("base64")
  readonly clusterName: string = "vault-dev-double"
  readonly clusterId: string = randomId()
  readonly health: HealthMode
  readonly kvUpgradeRequests: number
  sealed = false
  readonly mounts = new Map<string, SecretMount>()
  readonly auths = new Map<string, AuthMount>()
  readonly policies = new Map<string, Policy>()
  readonly tokens = new Map<string, TokenEntry>()
  readonly accessors = new Map<string, string>()

  constructor(options: DevStateOptions) {
    this.rootToken = options.rootToken
    this.health = options.health
    this.kvUpgradeRequests = options.kvUpgradeRequests
    this.mountSecrets("sys/", "system", undefined, "system endpoints used for control, policy and debugging")
    this.mountSecrets("identity/", "identity", undefined, "identity store")
    this.mountSecrets("secret/", "kv", 2, "key/value secret storage", 0)
    this.auths.set("token/", {
      path: "token/",
      type: "token",
      description: "token based credentials",
      accessor: accessorFor("auth_token"),
      uuid: randomId(),
      kubernetes: undefined,
      defaultLeaseTtl: 0,
      maxLeaseTtl: 0
    })
    this.policies.set("default", parsePolicy("default", defaultPolicyText) as Policy)
    this.policies.set("root", { name: "root", text: "", rules: [] })
    this.addToken({
      id: options.rootToken,
      accessor: randomAccessor(),
      policies: ["root"],
      displayName: "root",
      meta: null,
      numUses: 0,
      creationTime: options.now,
      creationTtl: 0,
      issueTime: options.now,
      expireAt: undefined,
      explicitMaxTtl: 0,
      maxTtl: 0,
      period: 0,
      renewable: false,
      path: "auth/token/root",
      orphan: true,
      parent: undefined,
      entityId: ""
    })
  }

  /** Adds a secrets engine; `upgradeRequests` overrides the configured "upgrading" window for KV v2. */
  mountSecrets(
    path: string,
    type: SecretMount["type"],
    version: 1 | 2 | undefined,
    description: string,
    upgradeRequests: number = this.kvUpgradeRequests
  ): SecretMount {
    const mount: SecretMount = {
      path,
      type,
      version,
      description,
      accessor: accessorFor(type),
      uuid: randomId(),
      store: type !== "kv" ? undefined : version === 2 ? new KvV2Store() : new KvV1Store(),
      upgradeRequestsLeft: version === 2 ? upgradeRequests : 0,
      defaultLeaseTtl: 0,
      maxLeaseTtl: 0
    }
    this.mounts.set(path, mount)
    return mount
  }

  /** Registers a token and its accessor. */
  addToken(entry: TokenEntry): void {
    this.tokens.set(entry.id, entry)
    this.accessors.set(entry.accessor, entry.id)
  }

  /** Revokes a token and, unless it is an orphan's parent only, the tokens it created. */
  revokeToken(id: string): void {
    const entry = this.tokens.get(id)
    if (entry === undefined) return
    this.tokens.delete(id)
    this.accessors.delete(entry.accessor)
    for (const child of Array.from(this.tokens.values())) {
      if (child.parent === id) this.revokeToken(child.id)
    }
  }

  /** The live token with this id, dropping it if it has expired. */
  liveToken(id: string, now: number): TokenEntry | undefined {
    const entry = this.tokens.get(id)
    if (entry === undefined) return undefined
    if (entry.expireAt !== undefined && entry.expireAt <= now) {
      this.revokeToken(id)
      return undefined
    }
    return entry
  }

  /** The longest secrets mount that holds `path`. */
  secretMountFor(path: string): SecretMount | undefined {
    return longestMount(this.mounts, path)
  }

  /** The longest auth mount that holds `path` (relative to `auth/`). */
  authMountFor(path: string): AuthMount | undefined {
    return longestMount(this.auths, path)
  }
}

const longestMount = <M extends { readonly path: string }>(mounts: Map<string, M>, path: string): M | undefined => {
  const withSlash = path.endsWith("/") ? path : `${path}/`
  let best: M | undefined
  for (const mount of mounts.values()) {
    if (withSlash.startsWith(mount.path) && (best === undefined || mount.path.length > best.path.length)) best = mount
  }
  return best
}

const accessorFor = (type: string): string => `${type}_${Crypto.randomBytes(4).toString("hex")}`

/** A token accessor shaped like Vault's. */
export const randomAccessor = (): string => Crypto.randomBytes(18).toString("base64url").slice(0, 24)

/** A service token id shaped like Vault's (`hvs.` and random text). */
export const randomTokenId = (): string => `hvs.${Crypto.randomBytes(18).toString("base64url")}`
