import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeKubeProtobuf } from "../src/internal/KubeProtobuf.ts"
import { requestJson } from "./helpers/HttpsJson.ts"

// A minimal protobuf writer, enough to build the bodies client-go sends.
const varint = (value: number): Array<number> => {
  const out: Array<number> = []
  let rest = value
  while (rest > 0x7f) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return out
}
const bytesField = (field: number, bytes: Uint8Array | Array<number>): Array<number> => [
  ...varint((field << 3) | 2),
  ...varint(bytes.length),
  ...bytes
]
const stringField = (field: number, value: string) => bytesField(field, Array.from(Buffer.from(value, "utf8")))
const varintField = (field: number, value: number) => [...varint(field << 3), ...varint(value)]
const mapEntry = (field: number, key: string, value: Array<number>) =>
  bytesField(field, [...stringField(1, key), ...bytesField(2, value)])
const envelope = (apiVersion: string, kind: string, raw: Array<number>) =>
  Uint8Array.from([
    0x6b,
    0x38,
    0x73,
    0x00,
    ...bytesField(1, [...stringField(1, apiVersion), ...stringField(2, kind)]),
    ...bytesField(2, raw),
    ...stringField(4, "")
  ])

// A Secret as Go encodes it: every string field written, unset ones as "".
const secretBody = envelope("v1", "Secret", [
  ...bytesField(1, [
    ...stringField(1, "db"),
    ...stringField(2, ""),
    ...stringField(3, ""),
    ...stringField(5, ""),
    ...mapEntry(11, "app", Array.from(Buffer.from("shop")))
  ]),
  ...mapEntry(2, "password", [0xff, 0x00, 0x01]),
  ...stringField(3, "Opaque"),
  ...mapEntry(4, "user", Array.from(Buffer.from("admin"))),
  ...varintField(99, 7)
])

describe("protobuf request bodies", () => {
  it("decodes a Secret, with bytes as base64, unset strings left out and unknown fields skipped", () => {
    const decoded = decodeKubeProtobuf(secretBody)
    expect(decoded).toEqual({
      _tag: "Ok",
      object: {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "db", labels: { app: "shop" } },
        data: { password: "/wAB" },
        type: "Opaque",
        stringData: { user: "admin" }
      }
    })
  })

  it("decodes a TokenRequest's audiences and expiration", () => {
    const body = envelope("authentication.k8s.io/v1", "TokenRequest", [
      ...bytesField(1, stringField(1, "vault")),
      ...bytesField(2, [...stringField(1, "vault"), ...stringField(1, "other"), ...varintField(4, 1200)])
    ])
    expect(decodeKubeProtobuf(body)).toMatchObject({
      _tag: "Ok",
      object: { kind: "TokenRequest", spec: { audiences: ["vault", "other"], expirationSeconds: 1200 } }
    })
  })

  it("refuses bodies without the prefix, truncated ones and kinds it does not know", () => {
    expect(decodeKubeProtobuf(Uint8Array.from([1, 2, 3, 4, 5]))._tag).toBe("Error")
    expect(decodeKubeProtobuf(secretBody.subarray(0, secretBody.length - 9))._tag).toBe("Error")
    expect(decodeKubeProtobuf(envelope("v1", "Pod", []))).toMatchObject({
      _tag: "Error",
      reason: expect.stringContaining("Pod")
    })
  })

  it.scoped("the dev API creates an object from a protobuf body, and answers a bad one with 400", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const post = (body: Uint8Array) =>
        requestJson(api.url, api.caPem, {
          method: "POST",
          path: "/api/v1/namespaces/default/secrets",
          token: api.adminToken,
          body,
          headers: { "content-type": "application/vnd.kubernetes.protobuf" }
        })
      const created = yield* post(secretBody)
      expect(created.status).toBe(201)
      expect(created.body).toMatchObject({
        kind: "Secret",
        metadata: { name: "db", namespace: "default", labels: { app: "shop" } },
        data: { password: "/wAB", user: Buffer.from("admin").toString("base64") }
      })
      const bad = yield* post(Uint8Array.from([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x7f]))
      expect(bad.status).toBe(400)
      expect(bad.body).toMatchObject({ kind: "Status", reason: "BadRequest" })
    }))
})
