/**
 * The beacon's check of a client's HELLO (PROTOCOL.md, "The exchange", step 3): the CA against the info hash, the
 * leaf against the CA, validity, extended key usage and key type, and then the proof signature.
 *
 * Every function here returns a result instead of throwing, because its input comes straight off the network.
 */
import { Data, Either } from "effect"
import { createHash, createPrivateKey, type KeyObject, sign, verify, X509Certificate } from "node:crypto"
import { purposes } from "./internal/oids.ts"

/** The client's role as it appears on the wire: 1 bridge, 2 broker. */
export type HelloRole = 1 | 2

/** How long either side's clock may be off when checking validity periods. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000

/** The signature schemes a leaf key may use for the proof. */
export type ProofAlgorithm = "ecdsa-p256-sha256" | "ecdsa-p384-sha384" | "ed25519"

/** A public key together with the proof scheme its type implies. */
export interface LeafKey {
  readonly publicKey: KeyObject
  readonly algorithm: ProofAlgorithm
}

/** A leaf that passed every certificate check; only the proof remains to be verified with its key. */
export interface VerifiedLeaf extends LeafKey {
  readonly notAfter: Date
}

/** Why a HELLO's certificates were refused; internal detail for logs, never sent to the client as is. */
export type CertInvalidReason =
  | "ca_unparseable"
  | "not_a_ca"
  | "ca_key_type"
  | "leaf_unparseable"
  | "leaf_key_type"
  | "not_issued_by_ca"
  | "bad_signature"
  | "ca_not_yet_valid"
  | "ca_expired"
  | "leaf_not_yet_valid"
  | "leaf_expired"
  | "missing_purpose"

const explanations: Record<CertInvalidReason | "hash_mismatch", string> = {
  hash_mismatch: "the CA certificate does not hash to the info hash; the CA and the info hash must come from the " +
    "same `cloudtaser target connect`",
  ca_unparseable: "the CA certificate is not valid DER X.509",
  not_a_ca: "the CA certificate is not a CA (basicConstraints CA is not true); send the pairing CA, not a leaf",
  ca_key_type: "the CA key is not ECDSA P-256, P-384 or Ed25519",
  leaf_unparseable: "the leaf certificate is not valid DER X.509",
  leaf_key_type: "the leaf key is not ECDSA P-256, P-384 or Ed25519",
  not_issued_by_ca: "the leaf certificate was not issued by the CA; issue it again from the pairing CA",
  bad_signature: "the leaf certificate's signature does not verify under the CA key; issue it again from the CA",
  ca_not_yet_valid: "the CA certificate is not valid yet; check the clock of the machine that made it",
  ca_expired: "the CA certificate has expired; run `cloudtaser target connect` again to make a new one",
  leaf_not_yet_valid: "the leaf certificate is not valid yet; check the clock of the machine that made it",
  leaf_expired: "the leaf certificate has expired; issue a new one from the CA",
  missing_purpose: "the leaf certificate's extended key usage does not name this role's purpose (serverAuth for a " +
    "bridge, clientAuth for a broker)"
}

/**
 * A HELLO the beacon must refuse; `code` is the protocol error name to send, `reason` the detail to log.
 */
export class HelloRejected extends Data.TaggedError("HelloRejected")<{
  readonly code: "hash_mismatch" | "cert_invalid"
  readonly reason: CertInvalidReason | "hash_mismatch"
}> {
  override get message(): string {
    return explanations[this.reason]
  }
}

/** What the beacon knows when it checks a HELLO. */
export interface HelloInput {
  readonly role: HelloRole
  readonly infoHash: Uint8Array
  readonly caDer: Uint8Array
  readonly leafDer: Uint8Array
  readonly now: Date
}

/** A function that checks a HELLO's certificates. */
export type HelloChecker = (input: HelloInput) => Either.Either<VerifiedLeaf, HelloRejected>

/** The proof scheme for a public or private key, or undefined for a key type the protocol does not accept. */
export const proofAlgorithm = (key: KeyObject): ProofAlgorithm | undefined => {
  if (key.asymmetricKeyType === "ed25519") return "ed25519"
  if (key.asymmetricKeyType !== "ec") return undefined
  const curve = key.asymmetricKeyDetails?.namedCurve
  return curve === "prime256v1" ? "ecdsa-p256-sha256" : curve === "secp384r1" ? "ecdsa-p384-sha384" : undefined
}

const digestFor: Record<ProofAlgorithm, string | null> = {
  "ecdsa-p256-sha256": "sha256",
  "ecdsa-p384-sha384": "sha384",
  ed25519: null
}

interface Period {
  readonly notBefore: number
  readonly notAfter: number
}

type CaEntry =
  | { readonly _tag: "Ok"; readonly certificate: X509Certificate; readonly publicKey: KeyObject } & Period
  | { readonly _tag: "Refused"; readonly reason: CertInvalidReason }

type LeafEntry =
  | { readonly _tag: "Ok"; readonly key: LeafKey; readonly purposes: ReadonlyArray<string> | undefined } & Period
  | { readonly _tag: "Refused"; readonly reason: CertInvalidReason }

/** A Map that forgets its oldest entry when full, so hostile input cannot grow it without bound. */
const boundedCache = <V>(capacity: number) => {
  const entries = new Map<string, V>()
  return {
    get: (key: string) => entries.get(key),
    set: (key: string, value: V) => {
      if (entries.size >= capacity) entries.delete(entries.keys().next().value!)
      entries.set(key, value)
      return value
    }
  }
}

// X509Certificate also reads PEM and ignores trailing bytes; the protocol carries exactly one DER certificate.
const parse = (der: Uint8Array): X509Certificate | undefined => {
  try {
    const certificate = new X509Certificate(der)
    return certificate.raw.equals(der) ? certificate : undefined
  } catch {
    return undefined
  }
}

const periodOf = (certificate: X509Certificate): Period => ({
  notBefore: certificate.validFromDate.getTime(),
  notAfter: certificate.validToDate.getTime()
})

const examineCa = (caDer: Uint8Array): CaEntry => {
  const certificate = parse(caDer)
  if (certificate === undefined) return { _tag: "Refused", reason: "ca_unparseable" }
  try {
    if (!certificate.ca) return { _tag: "Refused", reason: "not_a_ca" }
    const publicKey = certificate.publicKey
    if (proofAlgorithm(publicKey) === undefined) return { _tag: "Refused", reason: "ca_key_type" }
    return { _tag: "Ok", certificate, publicKey, ...periodOf(certificate) }
  } catch {
    return { _tag: "Refused", reason: "ca_unparseable" }
  }
}

const examineLeaf = (ca: X509Certificate, caKey: KeyObject, leafDer: Uint8Array): LeafEntry => {
  const certificate = parse(leafDer)
  if (certificate === undefined) return { _tag: "Refused", reason: "leaf_unparseable" }
  try {
    const publicKey = certificate.publicKey
    const algorithm = proofAlgorithm(publicKey)
    if (algorithm === undefined) return { _tag: "Refused", reason: "leaf_key_type" }
    if (!certificate.checkIssued(ca)) return { _tag: "Refused", reason: "not_issued_by_ca" }
    if (!certificate.verify(caKey)) return { _tag: "Refused", reason: "bad_signature" }
    return {
      _tag: "Ok",
      key: { publicKey, algorithm },
      purposes: certificate.keyUsage,
      ...periodOf(certificate)
    }
  } catch {
    return { _tag: "Refused", reason: "leaf_unparseable" }
  }
}

const certInvalid = (reason: CertInvalidReason) => Either.left(new HelloRejected({ code: "cert_invalid", reason }))

// Negated so that an invalid date (NaN) falls outside every period instead of inside.
const outsidePeriod = (period: Period, now: number): "not_yet_valid" | "expired" | undefined =>
  !(now + CLOCK_SKEW_MS >= period.notBefore)
    ? "not_yet_valid"
    : !(now - CLOCK_SKEW_MS <= period.notAfter)
    ? "expired"
    : undefined

const rolePurpose: Record<HelloRole, string> = { 1: purposes.serverAuth, 2: purposes.clientAuth }

const sha256 = (bytes: Uint8Array): Buffer => createHash("sha256").update(bytes).digest()

/**
 * Makes a HELLO checker with its own caches. What depends only on the certificate bytes (parsing, CA test, issuer,
 * signature, key type) is remembered per CA and per leaf, so a client that reconnects costs two hashes; validity
 * and key usage are checked on every call.
 */
export const makeHelloChecker = (options?: { readonly cacheSize?: number }): HelloChecker => {
  const capacity = Math.max(1, options?.cacheSize ?? 1024)
  const cas = boundedCache<CaEntry>(capacity)
  const leaves = boundedCache<LeafEntry>(capacity)

  return (input) => {
    const caHash = sha256(input.caDer)
    if (input.infoHash.byteLength !== caHash.byteLength || !caHash.equals(input.infoHash)) {
      return Either.left(new HelloRejected({ code: "hash_mismatch", reason: "hash_mismatch" }))
    }
    const caKey = caHash.toString("hex")
    const ca = cas.get(caKey) ?? cas.set(caKey, examineCa(input.caDer))
    if (ca._tag === "Refused") return certInvalid(ca.reason)

    const leafKey = `${caKey}:${sha256(input.leafDer).toString("hex")}`
    const leaf = leaves.get(leafKey) ?? leaves.set(leafKey, examineLeaf(ca.certificate, ca.publicKey, input.leafDer))
    if (leaf._tag === "Refused") return certInvalid(leaf.reason)

    const now = input.now.getTime()
    const caPeriod = outsidePeriod(ca, now)
    if (caPeriod !== undefined) return certInvalid(`ca_${caPeriod}`)
    const leafPeriod = outsidePeriod(leaf, now)
    if (leafPeriod !== undefined) return certInvalid(`leaf_${leafPeriod}`)

    if (leaf.purposes === undefined || !leaf.purposes.includes(rolePurpose[input.role])) {
      return certInvalid("missing_purpose")
    }
    return Either.right({ ...leaf.key, notAfter: new Date(leaf.notAfter) })
  }
}

/** Checks a HELLO's certificates with a process-wide checker; see {@link makeHelloChecker}. */
export const checkHello: HelloChecker = makeHelloChecker()

/**
 * Verifies a proof signature: ECDSA P-256 with SHA-256 or P-384 with SHA-384 (DER-encoded signature), or Ed25519.
 * False means `proof_invalid`; it never throws.
 */
export const verifyProof = (leafKey: LeafKey | KeyObject, proofInput: Uint8Array, signature: Uint8Array): boolean => {
  try {
    const key = "algorithm" in leafKey ? leafKey : { publicKey: leafKey, algorithm: proofAlgorithm(leafKey) }
    if (key.algorithm === undefined) return false
    return verify(digestFor[key.algorithm], proofInput, key.publicKey, signature)
  } catch {
    return false
  }
}

/** A private key that cannot sign a proof. */
export class ProofKeyError extends Data.TaggedError("ProofKeyError")<{
  readonly reason: "unreadable" | "key_type"
}> {
  override get message(): string {
    return this.reason === "unreadable"
      ? "the leaf private key is not a readable PEM private key; give the key issued with the leaf certificate"
      : "the leaf private key is not ECDSA P-256, P-384 or Ed25519; issue the leaf again with `cloudtaser`"
  }
}

/** Reads a leaf private key from PEM (PKCS#8, SEC1 or PKCS#1) and checks that it can sign a proof. */
export const readProofKey = (pem: string): Either.Either<KeyObject, ProofKeyError> => {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch {
    return Either.left(new ProofKeyError({ reason: "unreadable" }))
  }
  return proofAlgorithm(key) === undefined ? Either.left(new ProofKeyError({ reason: "key_type" })) : Either.right(key)
}

/**
 * Signs the proof input with the leaf private key, by the same rules as {@link verifyProof}. Throws a
 * {@link ProofKeyError} for a key it cannot use; check keys once at startup with {@link readProofKey}.
 */
export const signProof = (leafKey: string | KeyObject, proofInput: Uint8Array): Uint8Array => {
  const key = typeof leafKey === "string" ? Either.getOrThrowWith(readProofKey(leafKey), (error) => error) : leafKey
  const algorithm = proofAlgorithm(key)
  if (algorithm === undefined || key.type !== "private") throw new ProofKeyError({ reason: "key_type" })
  return new Uint8Array(sign(digestFor[algorithm], proofInput, key))
}
