/**
 * Makes the certificates CloudTaser runs on: the pairing CA, the bridge and broker leaves it signs, and self-signed
 * HTTPS server certificates; and reports how long a certificate remains valid.
 */
import { Effect, Either, Schema } from "effect"
import { createPrivateKey, X509Certificate } from "node:crypto"
import * as x509 from "./internal/x509.ts"
import { certificateFromPem, certificateToPem, privateKeyFromPem, privateKeyToPem } from "./Pem.ts"

/** A certificate and its private key, as both PEM and certificate DER. */
export interface Credentials {
  readonly certPem: string
  readonly certDer: Uint8Array
  /** Unencrypted PKCS#8 PEM. */
  readonly keyPem: string
}

/** A self-signed server certificate with the fingerprint clients pin or compare. */
export interface ServerCredentials extends Credentials {
  /** SHA-256 of the certificate DER as uppercase hex pairs joined by colons, as browsers and openssl print it. */
  readonly fingerprint256: string
}

/** The curve of a generated key; P-256 unless asked otherwise. */
export type KeyCurve = x509.Curve

/**
 * What a leaf is for: a bridge leaf serves the inner TLS (serverAuth), a broker leaf is its client (clientAuth), and
 * a server leaf is an ordinary HTTPS server certificate issued by a CA (serverAuth).
 */
export type LeafRole = "bridge" | "broker" | "server"

/** Certificate generation or reading failed. */
export class CertificateError extends Schema.TaggedError<CertificateError>()("CertificateError", {
  reason: Schema.Literal("invalid_options", "ca_unusable", "generation_failed", "unparseable"),
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "invalid_options":
        return `cannot make the certificate: ${this.detail}`
      case "ca_unusable":
        return `cannot sign with this CA: ${this.detail}; give the CA certificate and its PKCS#8 private key as PEM`
      case "generation_failed":
        return `making the certificate failed: ${this.detail}`
      case "unparseable":
        return `not a readable X.509 certificate: ${this.detail}; give a PEM or DER certificate file`
    }
  }
}

const dayMs = 24 * 60 * 60 * 1000

// New certificates start a few minutes in the past so that a peer whose clock runs slightly behind accepts them.
const backdateMs = 5 * 60 * 1000

const defaults = { caValidityDays: 3650, leafValidityDays: 365 } as const

interface Period {
  readonly notBefore: Date
  readonly notAfter: Date
}

const period = (
  options: { readonly validityDays?: number | undefined; readonly notBefore?: Date | undefined },
  defaultDays: number
): Either.Either<Period, CertificateError> => {
  const days = options.validityDays ?? defaultDays
  if (!Number.isFinite(days) || days <= 0) {
    return Either.left(new CertificateError({ reason: "invalid_options", detail: "validityDays must be positive" }))
  }
  // The system clock rather than Effect's Clock: certificates made under a TestClock must still work for real TLS.
  const notBefore = options.notBefore ?? new Date(Date.now() - backdateMs)
  if (Number.isNaN(notBefore.getTime())) {
    return Either.left(new CertificateError({ reason: "invalid_options", detail: "notBefore is not a date" }))
  }
  return Either.right({ notBefore, notAfter: new Date(notBefore.getTime() + days * dayMs) })
}

const checkCommonName = (commonName: string): Either.Either<string, CertificateError> =>
  commonName.length > 0 && commonName.length <= 64
    ? Either.right(commonName)
    : Either.left(
      new CertificateError({ reason: "invalid_options", detail: "commonName must be 1 to 64 characters" })
    )

const checkIpAddresses = (
  addresses: ReadonlyArray<string>
): Either.Either<ReadonlyArray<Uint8Array>, CertificateError> =>
  Either.all(addresses.map((address) => {
    const bytes = x509.ipAddressBytes(address)
    return bytes === undefined
      ? Either.left(
        new CertificateError({ reason: "invalid_options", detail: `"${address}" is not an IPv4 or IPv6 address` })
      )
      : Either.right(bytes)
  }))

// Labels of letters, digits, hyphens and underscores (some hosts' names have them), with an optional leading "*.".
const dnsName =
  /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/

const checkDnsNames = (names: ReadonlyArray<string>): Either.Either<ReadonlyArray<string>, CertificateError> => {
  const bad = names.find((name) => name.length > 253 || !dnsName.test(name))
  return bad === undefined
    ? Either.right(names)
    : Either.left(new CertificateError({ reason: "invalid_options", detail: `"${bad}" is not a DNS name` }))
}

const generation = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) =>
      new CertificateError({
        reason: "generation_failed",
        detail: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

const credentials = (der: Uint8Array, pkcs8: Uint8Array): Credentials => ({
  certPem: certificateToPem(der),
  certDer: der,
  keyPem: privateKeyToPem(pkcs8)
})

/** Options of {@link makeCa}. */
export interface CaOptions {
  readonly commonName: string
  /** Default 3650. */
  readonly validityDays?: number | undefined
  /** Default: five minutes before the system time. */
  readonly notBefore?: Date | undefined
  /** Default P-256. */
  readonly curve?: KeyCurve | undefined
}

/**
 * Makes a pairing CA: an ECDSA P-256 self-signed certificate with basicConstraints CA (critical), key usage
 * keyCertSign and cRLSign, and a subject key identifier. Its DER hashes to the info hash.
 */
export const makeCa = Effect.fn("Certificates.makeCa")(function*(options: CaOptions) {
  const commonName = yield* checkCommonName(options.commonName)
  const { notAfter, notBefore } = yield* period(options, defaults.caValidityDays)
  const curve = options.curve ?? "P-256"
  return yield* generation("CA", async () => {
    const keys = await x509.generateKeyPair(curve)
    const name = x509.commonNameRdn(commonName)
    const der = await x509.buildCertificate({
      subject: name,
      issuer: name,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingHash: x509.hashForCurve(curve),
      isCa: true,
      keyUsage: [x509.keyUsageBits.keyCertSign, x509.keyUsageBits.cRLSign],
      extKeyUsage: [],
      dnsNames: [],
      ipAddresses: [],
      authorityKeyId: undefined
    })
    return credentials(der, await x509.exportPkcs8(keys.privateKey))
  })
})

/** Options of {@link makeLeaf}. */
export interface LeafOptions {
  /** The issuing CA; its key must be ECDSA P-256 or P-384. */
  readonly ca: { readonly certPem: string; readonly keyPem: string }
  readonly role: LeafRole
  readonly commonName: string
  readonly dnsNames?: ReadonlyArray<string> | undefined
  readonly ipAddresses?: ReadonlyArray<string> | undefined
  /** Default 365. */
  readonly validityDays?: number | undefined
  /** Default: five minutes before the system time. */
  readonly notBefore?: Date | undefined
  /** Default P-256. */
  readonly curve?: KeyCurve | undefined
}

interface SigningCa {
  readonly der: Uint8Array
  readonly pkcs8: Uint8Array
  readonly curve: KeyCurve
}

const readCa = (ca: LeafOptions["ca"]): Either.Either<SigningCa, CertificateError> => {
  const unusable = (detail: string) => new CertificateError({ reason: "ca_unusable", detail })
  const der = certificateFromPem(ca.certPem)
  const pkcs8 = privateKeyFromPem(ca.keyPem)
  if (Either.isLeft(der)) return Either.left(unusable(`the CA certificate: ${der.left.message}`))
  if (Either.isLeft(pkcs8)) return Either.left(unusable(`the CA key: ${pkcs8.left.message}`))
  try {
    const certificate = new X509Certificate(der.right)
    if (!certificate.ca) return Either.left(unusable("the certificate is not a CA (basicConstraints CA is not true)"))
    const key = createPrivateKey({ key: Buffer.from(pkcs8.right), format: "der", type: "pkcs8" })
    const namedCurve = key.asymmetricKeyDetails?.namedCurve
    const curve = namedCurve === "prime256v1" ? "P-256" : namedCurve === "secp384r1" ? "P-384" : undefined
    if (key.asymmetricKeyType !== "ec" || curve === undefined) {
      return Either.left(unusable("the CA key is not ECDSA P-256 or P-384"))
    }
    if (!certificate.checkPrivateKey(key)) return Either.left(unusable("the key does not belong to the certificate"))
    return Either.right({ der: der.right, pkcs8: pkcs8.right, curve })
  } catch (cause) {
    return Either.left(unusable(cause instanceof Error ? cause.message : String(cause)))
  }
}

const leafPurposes: Record<LeafRole, ReadonlyArray<string>> = {
  bridge: [x509.purposes.serverAuth],
  broker: [x509.purposes.clientAuth],
  server: [x509.purposes.serverAuth]
}

/**
 * Issues a leaf signed by the CA: ECDSA P-256, key usage digitalSignature, extended key usage serverAuth for a bridge
 * or server and clientAuth for a broker, the given subjectAltNames, an authority key identifier and a random serial.
 */
export const makeLeaf = Effect.fn("Certificates.makeLeaf")(function*(options: LeafOptions) {
  const commonName = yield* checkCommonName(options.commonName)
  const { notAfter, notBefore } = yield* period(options, defaults.leafValidityDays)
  const dnsNames = yield* checkDnsNames(options.dnsNames ?? [])
  const ipAddresses = yield* checkIpAddresses(options.ipAddresses ?? [])
  const ca = yield* readCa(options.ca)
  const curve = options.curve ?? "P-256"
  return yield* generation("leaf", async () => {
    const issuer = x509.parseIssuer(ca.der)
    const signingKey = await x509.importSigningKey(ca.pkcs8, ca.curve)
    const keys = await x509.generateKeyPair(curve)
    const der = await x509.buildCertificate({
      subject: x509.commonNameRdn(commonName),
      issuer: issuer.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey,
      signingHash: x509.hashForCurve(ca.curve),
      isCa: false,
      keyUsage: [x509.keyUsageBits.digitalSignature],
      extKeyUsage: leafPurposes[options.role],
      dnsNames,
      ipAddresses,
      authorityKeyId: issuer.subjectKeyId
    })
    return credentials(der, await x509.exportPkcs8(keys.privateKey))
  })
})

/** Options of {@link makeServerCertificate}. */
export interface ServerCertificateOptions {
  readonly commonName: string
  /** For example `["localhost"]`. */
  readonly dnsNames?: ReadonlyArray<string> | undefined
  /** For example `["127.0.0.1", "::1"]`. */
  readonly ipAddresses?: ReadonlyArray<string> | undefined
  /** Default 365. */
  readonly validityDays?: number | undefined
  /** Default: five minutes before the system time. */
  readonly notBefore?: Date | undefined
}

/**
 * Makes a self-signed HTTPS server certificate (ECDSA P-256, serverAuth, the given subjectAltNames) and its SHA-256
 * fingerprint. A client trusts it by naming its PEM as the CA, or by comparing the fingerprint.
 */
export const makeServerCertificate = Effect.fn("Certificates.makeServerCertificate")(
  function*(options: ServerCertificateOptions) {
    const commonName = yield* checkCommonName(options.commonName)
    const { notAfter, notBefore } = yield* period(options, defaults.leafValidityDays)
    const dnsNames = yield* checkDnsNames(options.dnsNames ?? [])
    const ipAddresses = yield* checkIpAddresses(options.ipAddresses ?? [])
    const issued = yield* generation("server certificate", async () => {
      const keys = await x509.generateKeyPair("P-256")
      const name = x509.commonNameRdn(commonName)
      const der = await x509.buildCertificate({
        subject: name,
        issuer: name,
        notBefore,
        notAfter,
        publicKey: keys.publicKey,
        signingKey: keys.privateKey,
        signingHash: "SHA-256",
        isCa: false,
        keyUsage: [x509.keyUsageBits.digitalSignature],
        extKeyUsage: [x509.purposes.serverAuth],
        dnsNames,
        ipAddresses,
        authorityKeyId: undefined
      })
      return credentials(der, await x509.exportPkcs8(keys.privateKey))
    })
    return { ...issued, fingerprint256: fingerprint256(issued.certDer) } satisfies ServerCredentials
  }
)

/**
 * SHA-256 fingerprint of a certificate DER as uppercase hex pairs joined by colons; throws on bytes that are no
 * certificate.
 */
export const fingerprint256 = (certDer: Uint8Array): string => new X509Certificate(certDer).fingerprint256

/** Where a certificate stands in its validity period at a given time. */
export interface CertificateValidity {
  readonly notBefore: Date
  readonly notAfter: Date
  readonly status: "valid" | "expired" | "not_yet_valid"
  /** Whole days until notAfter, rounded down; negative once expired. */
  readonly daysLeft: number
  /** For people: "expires in N days (on …)", "expired on …" or "not valid before …". */
  readonly summary: string
}

const isoDay = (date: Date) => date.toISOString().slice(0, 10)

/** Reads a PEM or DER certificate's validity period and describes it as of `now`. */
export const certificateValidity = (
  pemOrDer: string | Uint8Array,
  now: Date
): Either.Either<CertificateValidity, CertificateError> => {
  const der = typeof pemOrDer === "string" ? certificateFromPem(pemOrDer) : Either.right(pemOrDer)
  if (Either.isLeft(der)) return Either.left(new CertificateError({ reason: "unparseable", detail: der.left.message }))
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(der.right)
  } catch (cause) {
    return Either.left(
      new CertificateError({ reason: "unparseable", detail: cause instanceof Error ? cause.message : String(cause) })
    )
  }
  const notBefore = certificate.validFromDate
  const notAfter = certificate.validToDate
  const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / dayMs)
  if (now.getTime() < notBefore.getTime()) {
    return Either.right({
      notBefore,
      notAfter,
      status: "not_yet_valid",
      daysLeft,
      summary: `not valid before ${notBefore.toISOString()}`
    })
  }
  if (now.getTime() > notAfter.getTime()) {
    return Either.right({ notBefore, notAfter, status: "expired", daysLeft, summary: `expired on ${isoDay(notAfter)}` })
  }
  const summary = daysLeft === 0
    ? `expires today (${notAfter.toISOString()})`
    : `expires in ${daysLeft} day${daysLeft === 1 ? "" : "s"} (on ${isoDay(notAfter)})`
  return Either.right({ notBefore, notAfter, status: "valid", daysLeft, summary })
}
