/**
 * Reads the protobuf request bodies kubectl and client-go send for built-in kinds
 * (`application/vnd.kubernetes.protobuf`) into the JSON form the dev API stores, for the kinds it serves. Unknown
 * fields are skipped, as protobuf allows.
 */

type Scalar = "string" | "bytes" | "bool" | "int64"

interface Field {
  readonly name: string
  readonly type: Scalar | MessageSchema
  readonly repeated?: boolean
  /** A `map<string, V>` field, with the type of its values. */
  readonly map?: "string" | "bytes"
}

type MessageSchema = { readonly [field: number]: Field }

const objectMeta: MessageSchema = {
  1: { name: "name", type: "string" },
  2: { name: "generateName", type: "string" },
  3: { name: "namespace", type: "string" },
  5: { name: "uid", type: "string" },
  6: { name: "resourceVersion", type: "string" },
  11: { name: "labels", type: "string", map: "string" },
  12: { name: "annotations", type: "string", map: "string" },
  14: { name: "finalizers", type: "string", repeated: true }
}

const objectReference: MessageSchema = {
  1: { name: "kind", type: "string" },
  2: { name: "namespace", type: "string" },
  3: { name: "name", type: "string" },
  4: { name: "uid", type: "string" },
  5: { name: "apiVersion", type: "string" }
}

const schemas: Record<string, MessageSchema> = {
  Secret: {
    1: { name: "metadata", type: objectMeta },
    2: { name: "data", type: "bytes", map: "bytes" },
    3: { name: "type", type: "string" },
    4: { name: "stringData", type: "string", map: "string" },
    5: { name: "immutable", type: "bool" }
  },
  ConfigMap: {
    1: { name: "metadata", type: objectMeta },
    2: { name: "data", type: "string", map: "string" },
    3: { name: "binaryData", type: "bytes", map: "bytes" },
    4: { name: "immutable", type: "bool" }
  },
  ServiceAccount: {
    1: { name: "metadata", type: objectMeta },
    2: { name: "secrets", type: objectReference, repeated: true },
    3: { name: "imagePullSecrets", type: { 1: { name: "name", type: "string" } }, repeated: true },
    4: { name: "automountServiceAccountToken", type: "bool" }
  },
  Namespace: {
    1: { name: "metadata", type: objectMeta },
    2: { name: "spec", type: { 1: { name: "finalizers", type: "string", repeated: true } } }
  },
  ClusterRoleBinding: {
    1: { name: "metadata", type: objectMeta },
    2: {
      name: "subjects",
      repeated: true,
      type: {
        1: { name: "kind", type: "string" },
        2: { name: "apiGroup", type: "string" },
        3: { name: "name", type: "string" },
        4: { name: "namespace", type: "string" }
      }
    },
    3: {
      name: "roleRef",
      type: {
        1: { name: "apiGroup", type: "string" },
        2: { name: "kind", type: "string" },
        3: { name: "name", type: "string" }
      }
    }
  },
  TokenRequest: {
    1: { name: "metadata", type: objectMeta },
    2: {
      name: "spec",
      type: {
        1: { name: "audiences", type: "string", repeated: true },
        3: {
          name: "boundObjectRef",
          type: {
            1: { name: "kind", type: "string" },
            2: { name: "apiVersion", type: "string" },
            3: { name: "name", type: "string" },
            4: { name: "uid", type: "string" }
          }
        },
        4: { name: "expirationSeconds", type: "int64" }
      }
    }
  },
  SelfSubjectReview: { 1: { name: "metadata", type: objectMeta } },
  SelfSubjectAccessReview: {
    1: { name: "metadata", type: objectMeta },
    2: {
      name: "spec",
      type: {
        1: {
          name: "resourceAttributes",
          type: {
            1: { name: "namespace", type: "string" },
            2: { name: "verb", type: "string" },
            3: { name: "group", type: "string" },
            4: { name: "version", type: "string" },
            5: { name: "resource", type: "string" },
            6: { name: "subresource", type: "string" },
            7: { name: "name", type: "string" }
          }
        },
        2: {
          name: "nonResourceAttributes",
          type: { 1: { name: "path", type: "string" }, 2: { name: "verb", type: "string" } }
        }
      }
    }
  },
  TokenReview: {
    1: { name: "metadata", type: objectMeta },
    2: {
      name: "spec",
      type: { 1: { name: "token", type: "string" }, 2: { name: "audiences", type: "string", repeated: true } }
    }
  }
}

const unknownEnvelope: MessageSchema = {
  1: { name: "typeMeta", type: { 1: { name: "apiVersion", type: "string" }, 2: { name: "kind", type: "string" } } },
  2: { name: "raw", type: "bytes" },
  3: { name: "contentEncoding", type: "string" },
  4: { name: "contentType", type: "string" }
}

class Malformed extends Error {}

class Reader {
  offset = 0
  readonly bytes: Uint8Array
  constructor(bytes: Uint8Array) {
    this.bytes = bytes
  }
  get done() {
    return this.offset >= this.bytes.length
  }
  varint(): bigint {
    let result = 0n
    let shift = 0n
    for (;;) {
      if (this.offset >= this.bytes.length || shift > 63n) throw new Malformed("truncated varint")
      const byte = this.bytes[this.offset++]!
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
    }
  }
  take(length: number): Uint8Array {
    if (length < 0 || this.offset + length > this.bytes.length) throw new Malformed("truncated field")
    const slice = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return slice
  }
  skip(wireType: number) {
    switch (wireType) {
      case 0:
        this.varint()
        return
      case 1:
        this.take(8)
        return
      case 2:
        this.take(Number(this.varint()))
        return
      case 5:
        this.take(4)
        return
      default:
        throw new Malformed(`unsupported wire type ${wireType}`)
    }
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const scalar = (type: Scalar, wireType: number, reader: Reader): unknown => {
  if (type === "bool" || type === "int64") {
    if (wireType !== 0) throw new Malformed("a number field is not a varint")
    const value = reader.varint()
    return type === "bool" ? value !== 0n : Number(BigInt.asIntN(64, value))
  }
  if (wireType !== 2) throw new Malformed("a string field is not length-delimited")
  const bytes = reader.take(Number(reader.varint()))
  return type === "string" ? utf8.decode(bytes) : Buffer.from(bytes).toString("base64")
}

const decodeMessage = (schema: MessageSchema, bytes: Uint8Array): Record<string, unknown> => {
  const reader = new Reader(bytes)
  const out: Record<string, unknown> = {}
  while (!reader.done) {
    const tag = Number(reader.varint())
    const fieldNumber = tag >>> 3
    const wireType = tag & 7
    const field = schema[fieldNumber]
    if (field === undefined) {
      reader.skip(wireType)
      continue
    }
    if (field.map !== undefined) {
      if (wireType !== 2) throw new Malformed("a map entry is not length-delimited")
      const entry = decodeMessage(
        { 1: { name: "key", type: "string" }, 2: { name: "value", type: field.map } },
        reader.take(Number(reader.varint()))
      )
      const map = (out[field.name] ??= {}) as Record<string, unknown>
      map[String(entry.key ?? "")] = entry.value ?? ""
      continue
    }
    const value = typeof field.type === "string"
      ? scalar(field.type, wireType, reader)
      : wireType === 2
      ? decodeMessage(field.type, reader.take(Number(reader.varint())))
      : (() => {
        throw new Malformed("a message field is not length-delimited")
      })()
    if (field.repeated) ((out[field.name] ??= []) as Array<unknown>).push(value)
    // Go's protobuf encoders write unset strings as empty ones; JSON leaves them out, and so does the dev API.
    else if (value !== "") out[field.name] = value
  }
  return out
}

const magic = [0x6b, 0x38, 0x73, 0x00]

/** Decodes a `k8s\0`-framed protobuf object into its JSON form, or says why it cannot. */
export const decodeKubeProtobuf = (
  bytes: Uint8Array
): { readonly _tag: "Ok"; readonly object: Record<string, unknown> } | {
  readonly _tag: "Error"
  readonly reason: string
} => {
  try {
    if (bytes.length < 4 || magic.some((byte, index) => bytes[index] !== byte)) {
      throw new Malformed("the body does not start with the Kubernetes protobuf prefix")
    }
    const envelope = decodeMessage(unknownEnvelope, bytes.subarray(4))
    const typeMeta = (envelope.typeMeta ?? {}) as { apiVersion?: string; kind?: string }
    const kind = typeMeta.kind ?? ""
    const schema = schemas[kind]
    if (schema === undefined) throw new Malformed(`the dev API does not read ${kind || "this kind"} as protobuf`)
    const raw = Buffer.from(String(envelope.raw ?? ""), "base64")
    return { _tag: "Ok", object: { apiVersion: typeMeta.apiVersion, kind, ...decodeMessage(schema, raw) } }
  } catch (error) {
    return { _tag: "Error", reason: error instanceof Error ? error.message : String(error) }
  }
}
