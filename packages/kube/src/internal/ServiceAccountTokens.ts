/**
 * Service-account JSON web tokens as a Kubernetes API server issues and checks them: ES256-signed, with the
 * registered claims and the `kubernetes.io` claim that projected tokens carry.
 */
import * as Crypto from "node:crypto"

/** The issuer real clusters use unless `--service-account-issuer` says otherwise. */
export const defaultIssuer = "https://kubernetes.default.svc.cluster.local"

/** The claims of a service-account token. */
export interface ServiceAccountClaims {
  readonly iss: string
  readonly sub: string
  readonly aud: ReadonlyArray<string>
  readonly exp: number
  readonly iat: number
  readonly nbf: number
  readonly jti: string
  readonly "kubernetes.io": {
    readonly namespace: string
    readonly serviceaccount: { readonly name: string; readonly uid: string }
    readonly pod?: { readonly name: string; readonly uid: string }
  }
}

/** What a token is asked for: the account it names, who may accept it, and for how long. */
export interface TokenGrant {
  readonly namespace: string
  readonly serviceAccount: string
  readonly serviceAccountUid: string
  readonly audiences: ReadonlyArray<string>
  readonly expirationSeconds: number
  readonly pod?: { readonly name: string; readonly uid: string } | undefined
}

/** The outcome of checking a bearer token: its claims, or why it is refused (no part of the token in it). */
export type Verification =
  | { readonly _tag: "Valid"; readonly claims: ServiceAccountClaims }
  | { readonly _tag: "Invalid"; readonly reason: string }

/** A signing key with its issuer: issues tokens and verifies the ones it issued. */
export interface TokenAuthority {
  readonly issuer: string
  readonly keyId: string
  /** The public key as a JSON web key, as `/openid/v1/jwks` serves it. */
  readonly publicJwk: Crypto.JsonWebKey
  readonly issue: (grant: TokenGrant, nowMillis: number) => { readonly token: string; readonly expiresAt: number }
  readonly verify: (token: string, nowMillis: number) => Verification
}

const base64Url = (bytes: Buffer | string): string => Buffer.from(bytes).toString("base64url")

const decodeJson = (segment: string): unknown => {
  try {
    return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"))
  } catch {
    return undefined
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Makes a fresh P-256 key and the authority that signs with it. */
export const makeTokenAuthority = (issuer: string = defaultIssuer): TokenAuthority => {
  const { privateKey, publicKey } = Crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  const keyId = base64Url(
    Crypto.createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest()
  )
  const header = base64Url(JSON.stringify({ alg: "ES256", kid: keyId }))

  const issue = (grant: TokenGrant, nowMillis: number) => {
    const now = Math.floor(nowMillis / 1000)
    const claims: ServiceAccountClaims = {
      aud: grant.audiences,
      exp: now + grant.expirationSeconds,
      iat: now,
      iss: issuer,
      jti: Crypto.randomUUID(),
      "kubernetes.io": {
        namespace: grant.namespace,
        ...(grant.pod ? { pod: grant.pod } : {}),
        serviceaccount: { name: grant.serviceAccount, uid: grant.serviceAccountUid }
      },
      nbf: now,
      sub: `system:serviceaccount:${grant.namespace}:${grant.serviceAccount}`
    }
    const signingInput = `${header}.${base64Url(JSON.stringify(claims))}`
    const signature = Crypto.sign("sha256", Buffer.from(signingInput), { key: privateKey, dsaEncoding: "ieee-p1363" })
    return { token: `${signingInput}.${base64Url(signature)}`, expiresAt: claims.exp * 1000 }
  }

  const verify = (token: string, nowMillis: number): Verification => {
    const parts = token.split(".")
    if (parts.length !== 3) return { _tag: "Invalid", reason: "the token is not a JSON web token" }
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string]
    const tokenHeader = decodeJson(headerPart)
    const payload = decodeJson(payloadPart)
    if (!isRecord(tokenHeader) || !isRecord(payload)) {
      return { _tag: "Invalid", reason: "the token is not a JSON web token" }
    }
    if (payload.iss !== issuer) {
      return { _tag: "Invalid", reason: "the token was not issued by this cluster's service-account issuer" }
    }
    if (tokenHeader.alg !== "ES256") {
      return { _tag: "Invalid", reason: `the token's signing algorithm is not one this cluster uses` }
    }
    const verified = Crypto.verify(
      "sha256",
      Buffer.from(`${headerPart}.${payloadPart}`),
      { key: publicKey, dsaEncoding: "ieee-p1363" },
      Buffer.from(signaturePart, "base64url")
    )
    if (!verified) return { _tag: "Invalid", reason: "the token's signature does not verify with this cluster's key" }
    const claims = payload as unknown as ServiceAccountClaims
    const now = Math.floor(nowMillis / 1000)
    if (typeof claims.exp !== "number" || claims.exp <= now) {
      return { _tag: "Invalid", reason: "the token has expired" }
    }
    if (typeof claims.nbf === "number" && claims.nbf > now) {
      return { _tag: "Invalid", reason: "the token is not valid yet" }
    }
    return { _tag: "Valid", claims }
  }

  return {
    issue,
    issuer,
    keyId,
    publicJwk: { ...publicKey.export({ format: "jwk" }), alg: "ES256", kid: keyId, use: "sig" },
    verify
  }
}
