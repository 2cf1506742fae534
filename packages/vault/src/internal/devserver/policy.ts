/**
 * ACL policies for the Vault dev server double: the HCL (or JSON) subset `path "<glob>" { capabilities = [...] }`,
 * and Vault's rule for which path rule applies to a request.
 */

/** The capabilities a path rule can grant. */
export type Capability = "create" | "read" | "update" | "patch" | "delete" | "list" | "sudo" | "deny"

const capabilities: ReadonlySet<string> = new Set([
  "create",
  "read",
  "update",
  "patch",
  "delete",
  "list",
  "sudo",
  "deny"
])

/** One `path` block. */
export interface PathRule {
  readonly pattern: string
  readonly capabilities: ReadonlyArray<Capability>
}

/** A parsed policy. */
export interface Policy {
  readonly name: string
  readonly text: string
  readonly rules: ReadonlyArray<PathRule>
}

/** Legacy `policy = "..."` values and the capabilities they stand for. */
const legacy: Record<string, ReadonlyArray<Capability>> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["create", "read", "update", "patch", "delete", "list"],
  sudo: ["create", "read", "update", "patch", "delete", "list", "sudo"]
}

/** Parses a policy document; on failure returns Vault's message. */
export const parsePolicy = (name: string, text: string): Policy | { readonly error: string } => {
  try {
    const rules = text.trim().startsWith("{") ? fromJson(JSON.parse(text)) : fromHcl(text)
    return { name, text, rules }
  } catch (error) {
    return { error: `failed to parse policy: ${error instanceof Error ? error.message : String(error)}` }
  }
}

const fromJson = (document: unknown): Array<PathRule> => {
  if (typeof document !== "object" || document === null) throw new Error("policy must be an object")
  const paths = (document as Record<string, unknown>).path
  if (paths === undefined) return []
  if (typeof paths !== "object" || paths === null) throw new Error("\"path\" must be an object")
  return Object.entries(paths as Record<string, unknown>).map(([pattern, block]) => {
    if (typeof block !== "object" || block === null) {
      throw new Error(`path ${JSON.stringify(pattern)} must be an object`)
    }
    return toRule(pattern, block as Record<string, unknown>)
  })
}

const toRule = (pattern: string, block: Record<string, unknown>): PathRule => {
  const granted = new Set<Capability>()
  for (const [key, value] of Object.entries(block)) {
    if (key === "capabilities") {
      if (!Array.isArray(value)) throw new Error("capabilities must be a list")
      for (const item of value) {
        if (typeof item !== "string" || !capabilities.has(item)) {
          throw new Error(`path ${JSON.stringify(pattern)}: invalid capability ${JSON.stringify(item)}`)
        }
        granted.add(item as Capability)
      }
    } else if (key === "policy") {
      const mapped = typeof value === "string" ? legacy[value] : undefined
      if (mapped === undefined) {
        throw new Error(`path ${JSON.stringify(pattern)}: invalid policy ${JSON.stringify(value)}`)
      }
      for (const item of mapped) granted.add(item)
    } else if (key === "description") {
      continue
    } else {
      // TODO: parameter constraints and response wrapping limits are not enforced, so they are refused rather than
      // silently granting more than the policy says.
      throw new Error(`path ${JSON.stringify(pattern)}: key ${JSON.stringify(key)} is not supported by the dev server`)
    }
  }
  const normalized = pattern.replace(/^\/+/, "")
  if (normalized.indexOf("*") >= 0 && normalized.indexOf("*") !== normalized.length - 1) {
    throw new Error(`path ${JSON.stringify(pattern)}: "*" is only allowed at the end of a path`)
  }
  return { pattern: normalized, capabilities: granted.has("deny") ? ["deny"] : Array.from(granted) }
}

type Token =
  | { readonly kind: "string"; readonly value: string; readonly line: number }
  | { readonly kind: "word"; readonly value: string; readonly line: number }
  | { readonly kind: "punct"; readonly value: string; readonly line: number }

const tokenize = (text: string): Array<Token> => {
  const tokens: Array<Token> = []
  let line = 1
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === "\n") {
      line++
      i++
    } else if (/\s/.test(c)) {
      i++
    } else if (c === "#" || (c === "/" && text[i + 1] === "/")) {
      while (i < text.length && text[i] !== "\n") i++
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2)
      if (end < 0) throw new Error(`unterminated comment on line ${line}`)
      line += text.slice(i, end).split("\n").length - 1
      i = end + 2
    } else if (c === "\"") {
      let value = ""
      i++
      while (i < text.length && text[i] !== "\"") {
        if (text[i] === "\n") throw new Error(`unterminated string on line ${line}`)
        if (text[i] === "\\" && i + 1 < text.length) i++
        value += text[i]
        i++
      }
      if (i >= text.length) throw new Error(`unterminated string on line ${line}`)
      i++
      tokens.push({ kind: "string", value, line })
    } else if ("{}[]=,:".includes(c)) {
      tokens.push({ kind: "punct", value: c, line })
      i++
    } else if (/[A-Za-z_]/.test(c)) {
      let value = ""
      while (i < text.length && /[A-Za-z0-9_-]/.test(text[i]!)) value += text[i++]
      tokens.push({ kind: "word", value, line })
    } else {
      throw new Error(`unexpected ${JSON.stringify(c)} on line ${line}`)
    }
  }
  return tokens
}

const fromHcl = (text: string): Array<PathRule> => {
  const tokens = tokenize(text)
  let at = 0
  const peek = () => tokens[at]
  const next = (what: string) => {
    const token = tokens[at++]
    if (token === undefined) throw new Error(`expected ${what} at the end of the policy`)
    return token
  }
  const expect = (kind: Token["kind"], value: string | undefined, what: string) => {
    const token = next(what)
    if (token.kind !== kind || (value !== undefined && token.value !== value)) {
      throw new Error(`expected ${what} on line ${token.line}, found ${JSON.stringify(token.value)}`)
    }
    return token
  }
  const value = (): unknown => {
    const token = next("a value")
    if (token.kind === "string") return token.value
    if (token.kind === "punct" && token.value === "[") {
      const items: Array<unknown> = []
      while (!(peek()?.kind === "punct" && peek()?.value === "]")) {
        items.push(value())
        if (peek()?.kind === "punct" && peek()?.value === ",") at++
      }
      at++
      return items
    }
    if (token.kind === "punct" && token.value === "{") return block()
    if (token.kind === "word") return token.value
    throw new Error(`unexpected ${JSON.stringify(token.value)} on line ${token.line}`)
  }
  const block = (): Record<string, unknown> => {
    const fields: Record<string, unknown> = {}
    while (!(peek()?.kind === "punct" && peek()?.value === "}")) {
      const key = next("a key")
      if (key.kind !== "word" && key.kind !== "string") throw new Error(`expected a key on line ${key.line}`)
      const separator = next("\"=\"")
      if (!(separator.kind === "punct" && (separator.value === "=" || separator.value === ":"))) {
        throw new Error(`expected "=" on line ${separator.line}`)
      }
      fields[key.value] = value()
      if (peek()?.kind === "punct" && peek()?.value === ",") at++
    }
    at++
    return fields
  }
  const rules: Array<PathRule> = []
  while (at < tokens.length) {
    const keyword = expect("word", undefined, "\"path\"")
    if (keyword.value !== "path") {
      throw new Error(`invalid key ${JSON.stringify(keyword.value)} on line ${keyword.line}`)
    }
    const pattern = expect("string", undefined, "a quoted path")
    expect("punct", "{", "\"{\"")
    rules.push(toRule(pattern.value, block()))
  }
  return rules
}

const matcher = (pattern: string): RegExp => {
  const prefix = pattern.endsWith("*")
  const body = prefix ? pattern.slice(0, -1) : pattern
  const source = body.split("/").map((segment) =>
    segment === "+" ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("/")
  return new RegExp(`^${source}${prefix ? "[\\s\\S]*" : ""}$`)
}

const firstWildcard = (pattern: string): number => {
  const positions = [pattern.indexOf("*"), plusIndex(pattern)].filter((position) => position >= 0)
  return positions.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...positions)
}

const plusIndex = (pattern: string): number => {
  let offset = 0
  for (const segment of pattern.split("/")) {
    if (segment === "+") return offset
    offset += segment.length + 1
  }
  return -1
}

const plusCount = (pattern: string): number => pattern.split("/").filter((segment) => segment === "+").length

/** Vault's priority between two matching patterns: positive when `a` is the more specific. */
const compareSpecificity = (a: string, b: string): number => {
  const wildcardA = firstWildcard(a)
  const wildcardB = firstWildcard(b)
  if (wildcardA !== wildcardB) return wildcardA > wildcardB ? 1 : -1
  const star = Number(b.endsWith("*")) - Number(a.endsWith("*"))
  if (star !== 0) return star
  const plus = plusCount(b) - plusCount(a)
  if (plus !== 0) return plus
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The capabilities a set of policies grants on `path`: rules with the same pattern are merged (deny wins), and the
 * most specific matching pattern decides, as in Vault.
 */
export const capabilitiesOn = (policies: ReadonlyArray<Policy>, path: string): ReadonlySet<Capability> => {
  const merged = new Map<string, Set<Capability>>()
  for (const policy of policies) {
    for (const rule of policy.rules) {
      const existing = merged.get(rule.pattern) ?? new Set<Capability>()
      for (const capability of rule.capabilities) existing.add(capability)
      merged.set(rule.pattern, existing)
    }
  }
  let best: string | undefined
  for (const pattern of merged.keys()) {
    if (!matcher(pattern).test(path)) continue
    if (best === undefined || compareSpecificity(pattern, best) > 0) best = pattern
  }
  if (best === undefined) return new Set()
  const granted = merged.get(best)!
  return granted.has("deny") ? new Set(["deny"]) : granted
}

/** The `default` policy every token gets unless told otherwise: it may look after itself and nothing more. */
export const defaultPolicyText = `# A token may look itself up, renew itself and revoke itself.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# A token may ask which capabilities it holds on a path.
path "sys/capabilities-self" {
  capabilities = ["update"]
}
`
