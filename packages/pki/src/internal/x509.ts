/**
 * Builds and signs X.509 certificates with pkijs on Node's WebCrypto.
 */
import * as asn1js from "asn1js"
import { createHash, randomBytes, webcrypto } from "node:crypto"
import { isIPv4, isIPv6 } from "node:net"
import * as pkijs from "pkijs"

/** The engine is passed to every pkijs call, so nothing here depends on pkijs' process-wide engine setting. */
export const engine = new pkijs.CryptoEngine({
  name: "node",
  crypto: webcrypto as unknown as pkijs.CryptoEngineParameters["crypto"]
})

export type Curve = "P-256" | "P-384"

export const hashForCurve = (curve: Curve): "SHA-256" | "SHA-384" => curve === "P-256" ? "SHA-256" : "SHA-384"

const oid = {
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35"
} as const

export { purposes } from "./oids.ts"

/** Key usage bits in DER order: bit 0 is the top bit of the first byte. */
export const keyUsageBits = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const

export const generateKeyPair = (curve: Curve): Promise<webcrypto.CryptoKeyPair> =>
  engine.generateKey({ name: "ECDSA", namedCurve: curve }, true, ["sign", "verify"]) as Promise<webcrypto.CryptoKeyPair>

export const importSigningKey = (pkcs8: Uint8Array, curve: Curve): Promise<webcrypto.CryptoKey> =>
  engine.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: curve }, false, ["sign"])

export const exportPkcs8 = async (key: webcrypto.CryptoKey): Promise<Uint8Array> =>
  new Uint8Array(await engine.exportKey("pkcs8", key))

export const commonNameRdn = (commonName: string): pkijs.RelativeDistinguishedNames =>
  new pkijs.RelativeDistinguishedNames({
    typesAndValues: [
      new pkijs.AttributeTypeAndValue({ type: oid.commonName, value: new asn1js.Utf8String({ value: commonName }) })
    ]
  })

// UTCTime cannot hold years from 2050 on; RFC 5280 requires GeneralizedTime for them.
const time = (date: Date): pkijs.Time =>
  new pkijs.Time({
    type: date.getUTCFullYear() >= 2050 ? pkijs.TimeType.GeneralizedTime : pkijs.TimeType.UTCTime,
    value: new Date(Math.floor(date.getTime() / 1000) * 1000)
  })

const toArrayBuffer = (bytes: Uint8Array): ArrayBuffer =>
  bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer

const extension = (extnID: string, critical: boolean, value: { toSchema(): asn1js.BaseBlock }) =>
  new pkijs.Extension({ extnID, critical, extnValue: value.toSchema().toBER(false) })

const keyUsage = (bits: ReadonlyArray<number>): asn1js.BitString => {
  const bytes = new Uint8Array(2)
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7)
  const highest = Math.max(...bits)
  const length = (highest >> 3) + 1
  return new asn1js.BitString({ valueHex: toArrayBuffer(bytes.subarray(0, length)), unusedBits: 7 - (highest & 7) })
}

/** The 4-byte IPv4 or 16-byte IPv6 form of an address for a subjectAltName iPAddress; undefined if it is neither. */
export const ipAddressBytes = (address: string): Uint8Array | undefined => {
  if (isIPv4(address)) return new Uint8Array(address.split(".").map(Number))
  if (!isIPv6(address) || address.includes("%")) return undefined
  let text = address
  const lastColon = text.lastIndexOf(":")
  const embedded = text.slice(lastColon + 1)
  if (isIPv4(embedded)) {
    const [a, b, c, d] = embedded.split(".").map(Number) as [number, number, number, number]
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const groupsOf = (part: string | undefined) =>
    part === undefined || part === "" ? [] : part.split(":").map((group) => parseInt(group, 16))
  const [head, tail] = text.split("::")
  const left = groupsOf(head)
  const right = groupsOf(tail)
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length
  const groups = [...left, ...Array<number>(zeros).fill(0), ...right]
  const bytes = new Uint8Array(16)
  groups.forEach((group, i) => {
    bytes[i * 2] = group >> 8
    bytes[i * 2 + 1] = group & 0xff
  })
  return bytes
}

export interface CertificateSpec {
  readonly subject: pkijs.RelativeDistinguishedNames
  readonly issuer: pkijs.RelativeDistinguishedNames
  readonly notBefore: Date
  readonly notAfter: Date
  readonly publicKey: webcrypto.CryptoKey
  readonly signingKey: webcrypto.CryptoKey
  readonly signingHash: "SHA-256" | "SHA-384"
  readonly isCa: boolean
  readonly keyUsage: ReadonlyArray<number>
  readonly extKeyUsage: ReadonlyArray<string>
  readonly dnsNames: ReadonlyArray<string>
  readonly ipAddresses: ReadonlyArray<Uint8Array>
  /** The issuer's subject key identifier; absent for a self-signed certificate, which then names its own. */
  readonly authorityKeyId: Uint8Array | undefined
}

/** Serial numbers are 16 random bytes, kept positive and of fixed length by fixing the top two bits to 01. */
const serialNumber = (): asn1js.Integer => {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x3f) | 0x40
  return new asn1js.Integer({ valueHex: toArrayBuffer(bytes) })
}

/** Builds, signs and DER-encodes one certificate. */
export const buildCertificate = async (spec: CertificateSpec): Promise<Uint8Array> => {
  const certificate = new pkijs.Certificate()
  certificate.version = 2
  certificate.serialNumber = serialNumber()
  certificate.subject = spec.subject
  certificate.issuer = spec.issuer
  certificate.notBefore = time(spec.notBefore)
  certificate.notAfter = time(spec.notAfter)
  await certificate.subjectPublicKeyInfo.importKey(spec.publicKey, engine)

  // Method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits.
  const subjectKeyId = new Uint8Array(
    createHash("sha1").update(certificate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest()
  )
  const extensions: Array<pkijs.Extension> = [
    extension(oid.basicConstraints, true, new pkijs.BasicConstraints({ cA: spec.isCa })),
    new pkijs.Extension({ extnID: oid.keyUsage, critical: true, extnValue: keyUsage(spec.keyUsage).toBER(false) })
  ]
  if (spec.extKeyUsage.length > 0) {
    extensions.push(
      extension(oid.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [...spec.extKeyUsage] }))
    )
  }
  if (spec.dnsNames.length + spec.ipAddresses.length > 0) {
    const names = [
      ...spec.dnsNames.map((value) => new pkijs.GeneralName({ type: 2, value })),
      ...spec.ipAddresses.map((bytes) =>
        new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: toArrayBuffer(bytes) }) })
      )
    ]
    extensions.push(extension(oid.subjectAltName, false, new pkijs.GeneralNames({ names })))
  }
  extensions.push(
    new pkijs.Extension({
      extnID: oid.subjectKeyIdentifier,
      critical: false,
      extnValue: new asn1js.OctetString({ valueHex: toArrayBuffer(subjectKeyId) }).toBER(false)
    })
  )
  extensions.push(
    extension(
      oid.authorityKeyIdentifier,
      false,
      new pkijs.AuthorityKeyIdentifier({
        keyIdentifier: new asn1js.OctetString({ valueHex: toArrayBuffer(spec.authorityKeyId ?? subjectKeyId) })
      })
    )
  )
  certificate.extensions = extensions

  await certificate.sign(spec.signingKey, spec.signingHash, engine)
  return new Uint8Array(certificate.toSchema(true).toBER(false))
}

export interface ParsedIssuer {
  readonly subject: pkijs.RelativeDistinguishedNames
  readonly subjectKeyId: Uint8Array
}

/** Reads what a child certificate copies from its issuer: the exact subject name and the subject key identifier. */
export const parseIssuer = (der: Uint8Array): ParsedIssuer => {
  const certificate = pkijs.Certificate.fromBER(der)
  const ski = certificate.extensions?.find((ext) => ext.extnID === oid.subjectKeyIdentifier)
  const subjectKeyId = ski
    ? new Uint8Array(
      (asn1js.fromBER(ski.extnValue.valueBlock.valueHexView).result as asn1js.OctetString)
        .valueBlock.valueHexView
    )
    : new Uint8Array(
      createHash("sha1").update(certificate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest()
    )
  return { subject: certificate.subject, subjectKeyId }
}
