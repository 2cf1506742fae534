import { KubeDevApi } from "@cloudtaser/kube/KubeDevApi"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Queue, TestClock } from "effect"
import * as Tls from "node:tls"
import { openWatch, requestJson } from "./helpers/HttpsJson.ts"

const tokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews"

const review = (token: string, audiences?: ReadonlyArray<string>) => ({
  apiVersion: "authentication.k8s.io/v1",
  kind: "TokenReview",
  spec: { token, ...(audiences ? { audiences } : {}) }
})

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"))

const statusShape = (code: number, reason: string) => ({
  kind: "Status",
  apiVersion: "v1",
  status: "Failure",
  reason,
  code,
  message: expect.any(String)
})

describe("KubeDevApi", () => {
  describe("requests and the status and body the real API answers them with", () => {
    type Case = {
      readonly name: string
      readonly method?: string
      readonly path: string
      readonly body?: unknown
      readonly auth?: "admin" | "none" | "unknown" | "serviceAccount"
      readonly status: number
      readonly shape: unknown
    }
    const cases: ReadonlyArray<Case> = [
      {
        name: "version",
        path: "/version",
        status: 200,
        shape: { major: "1", gitVersion: expect.stringMatching(/^v1\./) }
      },
      { name: "core versions", path: "/api", status: 200, shape: { kind: "APIVersions", versions: ["v1"] } },
      {
        name: "core resources",
        path: "/api/v1",
        status: 200,
        shape: {
          kind: "APIResourceList",
          groupVersion: "v1",
          resources: expect.arrayContaining([
            expect.objectContaining({ name: "secrets", kind: "Secret", namespaced: true }),
            expect.objectContaining({ name: "namespaces", kind: "Namespace", namespaced: false }),
            expect.objectContaining({ name: "configmaps", kind: "ConfigMap" }),
            expect.objectContaining({ name: "serviceaccounts", kind: "ServiceAccount" }),
            expect.objectContaining({ name: "serviceaccounts/token", kind: "TokenRequest", verbs: ["create"] })
          ])
        }
      },
      {
        name: "group list",
        path: "/apis",
        status: 200,
        shape: {
          kind: "APIGroupList",
          groups: expect.arrayContaining([
            expect.objectContaining({ name: "authentication.k8s.io", preferredVersion: expect.anything() }),
            expect.objectContaining({ name: "rbac.authorization.k8s.io" })
          ])
        }
      },
      { name: "one group", path: "/apis/rbac.authorization.k8s.io", status: 200, shape: { kind: "APIGroup" } },
      {
        name: "authentication resources",
        path: "/apis/authentication.k8s.io/v1",
        status: 200,
        shape: {
          kind: "APIResourceList",
          resources: [
            expect.objectContaining({ name: "selfsubjectreviews", verbs: ["create"] }),
            expect.objectContaining({ name: "tokenreviews", verbs: ["create"] })
          ]
        }
      },
      {
        name: "rbac resources",
        path: "/apis/rbac.authorization.k8s.io/v1",
        status: 200,
        shape: { resources: [expect.objectContaining({ name: "clusterrolebindings", namespaced: false })] }
      },
      { name: "unknown group", path: "/apis/apps/v1", status: 404, shape: statusShape(404, "NotFound") },
      { name: "unknown path", path: "/api/v1/pods", status: 404, shape: statusShape(404, "NotFound") },
      {
        name: "namespace list",
        path: "/api/v1/namespaces",
        status: 200,
        shape: {
          kind: "NamespaceList",
          apiVersion: "v1",
          metadata: { resourceVersion: expect.any(String) },
          items: expect.arrayContaining([
            expect.objectContaining({
              metadata: expect.objectContaining({ name: "default" }),
              status: { phase: "Active" }
            })
          ])
        }
      },
      {
        name: "missing namespace",
        path: "/api/v1/namespaces/nope",
        status: 404,
        shape: {
          ...statusShape(404, "NotFound"),
          message: "namespaces \"nope\" not found",
          details: { name: "nope", kind: "namespaces" }
        }
      },
      {
        name: "missing secret",
        path: "/api/v1/namespaces/default/secrets/nope",
        status: 404,
        shape: { ...statusShape(404, "NotFound"), message: "secrets \"nope\" not found" }
      },
      {
        name: "missing cluster role binding",
        path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/nope",
        status: 404,
        shape: {
          message: "clusterrolebindings.rbac.authorization.k8s.io \"nope\" not found",
          details: { group: "rbac.authorization.k8s.io" }
        }
      },
      {
        name: "no token",
        path: "/api/v1/namespaces",
        auth: "none",
        status: 401,
        shape: { ...statusShape(401, "Unauthorized"), message: "Unauthorized" }
      },
      {
        name: "unknown token",
        path: "/version",
        auth: "unknown",
        status: 401,
        shape: statusShape(401, "Unauthorized")
      },
      {
        name: "service account listing secrets",
        path: "/api/v1/namespaces/default/secrets",
        auth: "serviceAccount",
        status: 403,
        shape: {
          ...statusShape(403, "Forbidden"),
          message:
            "secrets is forbidden: User \"system:serviceaccount:team:app\" cannot list resource \"secrets\" in API " +
            "group \"\" in the namespace \"default\""
        }
      },
      {
        name: "service account reading a namespace",
        path: "/api/v1/namespaces/team",
        auth: "serviceAccount",
        status: 403,
        shape: {
          message: "namespaces \"team\" is forbidden: User \"system:serviceaccount:team:app\" cannot get resource " +
            "\"namespaces\" in API group \"\" in the namespace \"team\""
        }
      },
      {
        name: "service account reading discovery",
        path: "/api",
        auth: "serviceAccount",
        status: 200,
        shape: { kind: "APIVersions" }
      },
      {
        name: "service account reading itself",
        path: "/api/v1/namespaces/team/serviceaccounts/app",
        auth: "serviceAccount",
        status: 200,
        shape: { kind: "ServiceAccount", metadata: { name: "app", namespace: "team" } }
      },
      {
        name: "service account reading another account",
        path: "/api/v1/namespaces/team/serviceaccounts/default",
        auth: "serviceAccount",
        status: 403,
        shape: statusShape(403, "Forbidden")
      },
      {
        name: "malformed body",
        method: "POST",
        path: "/api/v1/namespaces/default/secrets",
        body: "{not json",
        status: 400,
        shape: statusShape(400, "BadRequest")
      },
      {
        name: "body kind not the resource's",
        method: "POST",
        path: "/api/v1/namespaces/default/secrets",
        body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } },
        status: 400,
        shape: statusShape(400, "BadRequest")
      },
      {
        name: "namespace in body not the path's",
        method: "POST",
        path: "/api/v1/namespaces/default/secrets",
        body: { metadata: { name: "x", namespace: "other" } },
        status: 400,
        shape: statusShape(400, "BadRequest")
      },
      {
        name: "object without a name",
        method: "POST",
        path: "/api/v1/namespaces/default/configmaps",
        body: { metadata: {} },
        status: 422,
        shape: statusShape(422, "Invalid")
      },
      {
        name: "invalid name",
        method: "POST",
        path: "/api/v1/namespaces",
        body: { metadata: { name: "Not_A_Label" } },
        status: 422,
        shape: statusShape(422, "Invalid")
      },
      {
        name: "create in a missing namespace",
        method: "POST",
        path: "/api/v1/namespaces/nope/secrets",
        body: { metadata: { name: "x" } },
        status: 404,
        shape: { message: "namespaces \"nope\" not found" }
      },
      {
        name: "secret data that is not base64",
        method: "POST",
        path: "/api/v1/namespaces/default/secrets",
        body: { metadata: { name: "x" }, data: { k: "not base64!" } },
        status: 422,
        shape: statusShape(422, "Invalid")
      },
      {
        name: "binding without roleRef",
        method: "POST",
        path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        body: { metadata: { name: "x" }, subjects: [] },
        status: 422,
        shape: statusShape(422, "Invalid")
      },
      {
        name: "deleting a built-in namespace",
        method: "DELETE",
        path: "/api/v1/namespaces/default",
        status: 403,
        shape: statusShape(403, "Forbidden")
      },
      {
        name: "post to an object",
        method: "POST",
        path: "/api/v1/namespaces/default",
        status: 405,
        shape: statusShape(405, "MethodNotAllowed")
      },
      {
        name: "token request shorter than ten minutes",
        method: "POST",
        path: "/api/v1/namespaces/team/serviceaccounts/app/token",
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 60 } },
        status: 422,
        shape: statusShape(422, "Invalid")
      },
      {
        name: "token request for a missing account",
        method: "POST",
        path: "/api/v1/namespaces/team/serviceaccounts/ghost/token",
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
        status: 404,
        shape: { message: "serviceaccounts \"ghost\" not found" }
      },
      {
        name: "service account requesting a token",
        method: "POST",
        path: "/api/v1/namespaces/team/serviceaccounts/app/token",
        auth: "serviceAccount",
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
        status: 403,
        shape: { message: expect.stringContaining("cannot create resource \"serviceaccounts/token\"") }
      },
      {
        name: "who am I, as a service account",
        method: "POST",
        path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        auth: "serviceAccount",
        body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
        status: 201,
        shape: {
          kind: "SelfSubjectReview",
          status: {
            userInfo: {
              username: "system:serviceaccount:team:app",
              groups: expect.arrayContaining(["system:authenticated"])
            }
          }
        }
      },
      {
        name: "may a service account list secrets",
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        auth: "serviceAccount",
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectAccessReview",
          spec: { resourceAttributes: { verb: "list", resource: "secrets", namespace: "team" } }
        },
        status: 201,
        shape: { kind: "SelfSubjectAccessReview", status: { allowed: false } }
      },
      {
        name: "may a service account read itself",
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        auth: "serviceAccount",
        body: {
          spec: { resourceAttributes: { verb: "get", resource: "serviceaccounts", namespace: "team", name: "app" } }
        },
        status: 201,
        shape: { status: { allowed: true } }
      },
      {
        name: "may the admin request tokens",
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body: {
          spec: {
            resourceAttributes: { verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "x" }
          }
        },
        status: 201,
        shape: { status: { allowed: true } }
      },
      {
        name: "access review without attributes",
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body: { spec: {} },
        status: 422,
        shape: statusShape(422, "Invalid")
      },
      {
        name: "authorization resources",
        path: "/apis/authorization.k8s.io/v1",
        status: 200,
        shape: { resources: [expect.objectContaining({ name: "selfsubjectaccessreviews", verbs: ["create"] })] }
      },
      {
        name: "patch with an unsupported type",
        method: "PATCH",
        path: "/api/v1/namespaces/team",
        body: [{ op: "add", path: "/metadata/labels/a", value: "b" }],
        status: 415,
        shape: statusShape(415, "UnsupportedMediaType")
      }
    ]

    for (const testCase of cases) {
      it.scoped(`${testCase.method ?? "GET"} ${testCase.path}: ${testCase.name}`, () =>
        Effect.gen(function*() {
          const api = yield* KubeDevApi.start()
          const serviceAccountToken = yield* api.issueToken({ namespace: "team", serviceAccount: "app" })
          const token = {
            admin: api.adminToken,
            none: undefined,
            unknown: "not-a-token-this-server-knows",
            serviceAccount: serviceAccountToken
          }[testCase.auth ?? "admin"]
          const response = yield* requestJson(api.url, api.caPem, {
            method: testCase.method ?? "GET",
            path: testCase.path,
            token,
            body: testCase.body,
            ...(testCase.method === "PATCH" ? { headers: { "content-type": "application/apply-patch+yaml" } } : {})
          })
          expect(response.contentType).toBe("application/json")
          expect(response.status).toBe(testCase.status)
          expect(response.body).toMatchObject(testCase.shape as object)
        }))
    }
  })

  it.scoped("creates, reads, replaces and deletes a secret with the real API's metadata and encodings", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const call = (method: string, path: string, body?: unknown) =>
        requestJson(api.url, api.caPem, { method, path, token: api.adminToken, body })
      const created = yield* call("POST", "/api/v1/namespaces/default/secrets", {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "db", labels: { app: "shop" } },
        data: { user: Buffer.from("admin").toString("base64") },
        stringData: { password: "s3cret" }
      })
      expect(created.status).toBe(201)
      expect(created.body).toMatchObject({
        kind: "Secret",
        apiVersion: "v1",
        type: "Opaque",
        metadata: {
          name: "db",
          namespace: "default",
          uid: expect.stringMatching(/^[0-9a-f-]{36}$/),
          resourceVersion: expect.stringMatching(/^\d+$/),
          creationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
        },
        data: { user: "YWRtaW4=", password: Buffer.from("s3cret").toString("base64") }
      })
      expect(created.body.stringData).toBeUndefined()

      const again = yield* call("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "db" } })
      expect(again.status).toBe(409)
      expect(again.body).toMatchObject({ reason: "AlreadyExists", message: "secrets \"db\" already exists" })

      const read = yield* call("GET", "/api/v1/namespaces/default/secrets/db")
      expect(read.body).toEqual(created.body)

      const stale = yield* call("PUT", "/api/v1/namespaces/default/secrets/db", {
        metadata: { name: "db", resourceVersion: "1" },
        data: {}
      })
      expect(stale.status).toBe(409)
      expect(stale.body).toMatchObject({ reason: "Conflict" })

      const replaced = yield* call("PUT", "/api/v1/namespaces/default/secrets/db", {
        metadata: { name: "db", labels: { app: "shop" }, resourceVersion: created.body.metadata.resourceVersion },
        stringData: { password: "n3w" }
      })
      expect(replaced.status).toBe(200)
      expect(replaced.body.metadata.uid).toBe(created.body.metadata.uid)
      expect(Number(replaced.body.metadata.resourceVersion)).toBeGreaterThan(
        Number(created.body.metadata.resourceVersion)
      )
      expect(replaced.body.data).toEqual({ password: Buffer.from("n3w").toString("base64") })

      const list = yield* call("GET", "/api/v1/namespaces/default/secrets?labelSelector=app%3Dshop")
      expect(list.body).toMatchObject({ kind: "SecretList", apiVersion: "v1" })
      expect(list.body.items.map((item: { metadata: { name: string } }) => item.metadata.name)).toEqual(["db"])
      expect(list.body.items[0].kind).toBeUndefined()

      const removed = yield* call("DELETE", "/api/v1/namespaces/default/secrets/db")
      expect(removed.body).toMatchObject({
        kind: "Status",
        status: "Success",
        details: { name: "db", kind: "secrets" }
      })
      expect((yield* call("GET", "/api/v1/namespaces/default/secrets/db")).status).toBe(404)
    }))

  it.scoped("accepts the hybrid post-quantum key exchange from a client that offers nothing else", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const group = yield* Effect.async<string | undefined, Error>((resume) => {
        const socket = Tls.connect({ host: "127.0.0.1", port: api.port, ca: api.caPem, ecdhCurve: "X25519MLKEM768" })
        socket.once("secureConnect", () => {
          const info = socket.getEphemeralKeyInfo()
          socket.destroy()
          resume(Effect.succeed(info !== null && "name" in info ? info.name : undefined))
        })
        socket.once("error", (error) => resume(Effect.fail(error)))
      })
      expect(group).toBe("X25519MLKEM768")
    }))

  it.scoped("a body over 3 MiB is refused with 413 and the server keeps serving", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const response = yield* requestJson(api.url, api.caPem, {
        method: "POST",
        path: "/api/v1/namespaces/default/configmaps",
        token: api.adminToken,
        body: { metadata: { name: "big" }, data: { blob: "x".repeat(4 * 1024 * 1024) } }
      }).pipe(Effect.catchAll((error) => Effect.succeed({ status: 0, body: String(error), contentType: "" })))
      // The server answers 413 and stops reading, so the client may see the reset before the answer.
      if (response.status === 0) expect(response.body).toContain("ECONNRESET")
      else expect(response.body).toMatchObject({ kind: "Status", code: 413 })
      const after = yield* requestJson(api.url, api.caPem, { path: "/version", token: api.adminToken })
      expect(after.status).toBe(200)
      const absent = yield* requestJson(api.url, api.caPem, {
        path: "/api/v1/namespaces/default/configmaps/big",
        token: api.adminToken
      })
      expect(absent.status).toBe(404)
    }))

  it.scoped("deleting a namespace deletes what is in it, and creating one gives it a default service account", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const call = (method: string, path: string, body?: unknown) =>
        requestJson(api.url, api.caPem, { method, path, token: api.adminToken, body })
      expect((yield* call("POST", "/api/v1/namespaces", { metadata: { name: "shop" } })).status).toBe(201)
      expect((yield* call("GET", "/api/v1/namespaces/shop/serviceaccounts/default")).status).toBe(200)
      yield* call("POST", "/api/v1/namespaces/shop/configmaps", { metadata: { name: "c" }, data: { a: "b" } })
      const deleted = yield* call("DELETE", "/api/v1/namespaces/shop")
      expect(deleted.body).toMatchObject({ kind: "Namespace", status: { phase: "Terminating" } })
      expect((yield* call("GET", "/api/v1/namespaces/shop/configmaps/c")).status).toBe(404)
      expect((yield* call("GET", "/api/v1/namespaces/shop")).status).toBe(404)
    }))

  it.scoped("answers kubectl's Table requests with the columns kubectl prints", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      yield* requestJson(api.url, api.caPem, {
        method: "POST",
        path: "/api/v1/namespaces/default/secrets",
        token: api.adminToken,
        body: { metadata: { name: "s" }, stringData: { a: "1", b: "2" } }
      })
      const response = yield* requestJson(api.url, api.caPem, {
        path: "/api/v1/namespaces/default/secrets",
        token: api.adminToken,
        headers: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" }
      })
      expect(response.body).toMatchObject({
        kind: "Table",
        apiVersion: "meta.k8s.io/v1",
        columnDefinitions: [{ name: "Name" }, { name: "Type" }, { name: "Data" }, { name: "Age" }],
        rows: [{ cells: ["s", "Opaque", 2, expect.any(String)], object: { kind: "PartialObjectMetadata" } }]
      })
    }))

  describe("TokenRequest and TokenReview", () => {
    it.scoped("issues tokens with the claims of projected service-account tokens", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const response = yield* requestJson(api.url, api.caPem, {
          method: "POST",
          path: "/api/v1/namespaces/default/serviceaccounts/default/token",
          token: api.adminToken,
          body: {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: {
              audiences: ["vault"],
              expirationSeconds: 1200,
              boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "web-0", uid: "pod-uid-1" }
            }
          }
        })
        expect(response.status).toBe(201)
        expect(response.body).toMatchObject({
          kind: "TokenRequest",
          apiVersion: "authentication.k8s.io/v1",
          spec: { audiences: ["vault"], expirationSeconds: 1200 },
          status: { token: expect.any(String), expirationTimestamp: expect.any(String) }
        })
        const token: string = response.body.status.token
        const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString("utf8"))
        expect(header).toMatchObject({ alg: "ES256", kid: expect.any(String) })
        const account = yield* requestJson(api.url, api.caPem, {
          path: "/api/v1/namespaces/default/serviceaccounts/default",
          token: api.adminToken
        })
        const claims = claimsOf(token)
        expect(claims).toMatchObject({
          iss: "https://kubernetes.default.svc.cluster.local",
          sub: "system:serviceaccount:default:default",
          aud: ["vault"],
          "kubernetes.io": {
            namespace: "default",
            serviceaccount: { name: "default", uid: account.body.metadata.uid },
            pod: { name: "web-0", uid: "pod-uid-1" }
          }
        })
        expect(claims.exp - claims.iat).toBe(1200)
        expect(claims.nbf).toBe(claims.iat)
        expect(new Date(response.body.status.expirationTimestamp).getTime()).toBe(claims.exp * 1000)
      }))

    it.scoped("authenticates a valid token as its service account, with the requested audiences", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const token = yield* api.issueToken({
          namespace: "vault",
          serviceAccount: "auth",
          audiences: ["vault", "other"]
        })
        const response = yield* requestJson(api.url, api.caPem, {
          method: "POST",
          path: tokenReviewPath,
          token: api.adminToken,
          body: review(token, ["vault"])
        })
        expect(response.status).toBe(201)
        expect(response.body).toMatchObject({
          kind: "TokenReview",
          apiVersion: "authentication.k8s.io/v1",
          status: {
            authenticated: true,
            user: {
              username: "system:serviceaccount:vault:auth",
              uid: claimsOf(token)["kubernetes.io"].serviceaccount.uid,
              groups: ["system:serviceaccounts", "system:serviceaccounts:vault", "system:authenticated"]
            },
            audiences: ["vault"]
          }
        })
        expect(response.body.status.error).toBeUndefined()
      }))

    it.scoped("a service-account token may review tokens, including itself, as Vault's reviewer does", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const token = yield* api.issueToken({ namespace: "vault", serviceAccount: "reviewer" })
        const response = yield* requestJson(api.url, api.caPem, {
          method: "POST",
          path: tokenReviewPath,
          token,
          body: review(token)
        })
        expect(response.status).toBe(201)
        expect(response.body.status).toMatchObject({
          authenticated: true,
          audiences: ["https://kubernetes.default.svc.cluster.local"]
        })
      }))

    const rejected = (api: KubeDevApi["Type"], token: string, audiences?: ReadonlyArray<string>) =>
      requestJson(api.url, api.caPem, {
        method: "POST",
        path: tokenReviewPath,
        token: api.adminToken,
        body: review(token, audiences)
      }).pipe(Effect.map((response) => {
        expect(response.status).toBe(201)
        expect(response.body.status).toMatchObject({
          authenticated: false,
          error: expect.stringMatching(/^\[invalid bearer token, .+\]$/)
        })
        expect(response.body.status.user).toEqual({})
        return response.body.status.error as string
      }))

    it.scoped("rejects an unknown token", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        yield* rejected(api, "abc.def.ghi")
        yield* rejected(api, "opaque-token")
      }))

    it.scoped("rejects an expired token", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const token = yield* api.issueToken({ namespace: "a", serviceAccount: "b", expirationSeconds: 600 })
        yield* TestClock.adjust("599 seconds")
        yield* rejected(api, "x") // the clock moves the server too: the token is still good below
        const stillGood = yield* requestJson(api.url, api.caPem, {
          method: "POST",
          path: tokenReviewPath,
          token: api.adminToken,
          body: review(token)
        })
        expect(stillGood.body.status.authenticated).toBe(true)
        yield* TestClock.adjust("2 seconds")
        expect(yield* rejected(api, token)).toContain("expired")
      }))

    it.scoped("rejects a forged token whose claims were changed after signing", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const token = yield* api.issueToken({ namespace: "a", serviceAccount: "b" })
        const [header, , signature] = token.split(".")
        const claims = claimsOf(token)
        claims.sub = "system:serviceaccount:kube-system:admin"
        const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`
        expect(yield* rejected(api, forged)).toContain("signature")
      }))

    it.scoped("rejects a foreign token signed by another cluster's key, or from another issuer", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const other = yield* KubeDevApi.start()
        const foreign = yield* other.issueToken({ namespace: "a", serviceAccount: "b" })
        yield* api.issueToken({ namespace: "a", serviceAccount: "b" })
        expect(yield* rejected(api, foreign)).toContain("signature")
        const elsewhere = yield* KubeDevApi.start({ issuer: "https://oidc.example.com" })
        expect(yield* rejected(api, yield* elsewhere.issueToken({ namespace: "a", serviceAccount: "b" }))).toContain(
          "issuer"
        )
      }))

    it.scoped("rejects a token for other audiences, and one whose service account was deleted", () =>
      Effect.gen(function*() {
        const api = yield* KubeDevApi.start()
        const token = yield* api.issueToken({ namespace: "a", serviceAccount: "b", audiences: ["vault"] })
        expect(yield* rejected(api, token)).toContain("audiences")
        expect(yield* rejected(api, token, ["other"])).toContain("audiences")
        yield* requestJson(api.url, api.caPem, {
          method: "DELETE",
          path: "/api/v1/namespaces/a/serviceaccounts/b",
          token: api.adminToken
        })
        expect(yield* rejected(api, token, ["vault"])).toContain("deleted")
        const unauthorized = yield* requestJson(api.url, api.caPem, { path: "/version", token })
        expect(unauthorized.status).toBe(401)
      }))
  })

  it.scoped("a cluster-admin binding gives a service account full access", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const token = yield* api.issueToken({ namespace: "ops", serviceAccount: "deployer" })
      const list = () => requestJson(api.url, api.caPem, { path: "/api/v1/namespaces/default/secrets", token })
      expect((yield* list()).status).toBe(403)
      const bound = yield* requestJson(api.url, api.caPem, {
        method: "POST",
        path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        token: api.adminToken,
        body: {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: "deployer-admin" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "ServiceAccount", name: "deployer", namespace: "ops" }]
        }
      })
      expect(bound.status).toBe(201)
      expect(bound.body).toMatchObject({ kind: "ClusterRoleBinding", apiVersion: "rbac.authorization.k8s.io/v1" })
      expect((yield* list()).status).toBe(200)
    }))

  it.scoped("writes a kubeconfig whose context reaches the server with its CA and token", () =>
    Effect.gen(function*() {
      const api = yield* KubeDevApi.start()
      const kubeconfig = api.kubeconfig()
      expect(kubeconfig).toContain(`server: "${api.url}"`)
      expect(kubeconfig).toContain(`certificate-authority-data: "${Buffer.from(api.caPem).toString("base64")}"`)
      expect(kubeconfig).toContain("current-context: \"cloudtaser-dev\"")
      expect(kubeconfig).toContain(`token: "${api.adminToken}"`)
    }))
})

describe("KubeDevApi watches", () => {
  const start = Effect.gen(function*() {
    const api = yield* KubeDevApi.start()
    const call = (method: string, path: string, body?: unknown) =>
      requestJson(api.url, api.caPem, {
        method,
        path,
        token: api.adminToken,
        body,
        ...(method === "PATCH" ? { headers: { "content-type": "application/merge-patch+json" } } : {})
      })
    return { api, call }
  })

  it.scoped("a watch from a resourceVersion streams what changes after it: ADDED, MODIFIED, DELETED", () =>
    Effect.gen(function*() {
      const { api, call } = yield* start
      yield* call("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "before" } })
      const list = yield* call("GET", "/api/v1/namespaces/default/secrets")
      const watch = yield* openWatch(
        api.url,
        api.caPem,
        `/api/v1/namespaces/default/secrets?watch=true&resourceVersion=${list.body.metadata.resourceVersion}`,
        api.adminToken
      )
      yield* call("POST", "/api/v1/namespaces", { metadata: { name: "other" } })
      yield* call("POST", "/api/v1/namespaces/other/secrets", { metadata: { name: "elsewhere" } })
      yield* call("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "not-a-secret" } })
      yield* call("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "s" }, stringData: { a: "1" } })
      const patched = yield* call("PATCH", "/api/v1/namespaces/default/secrets/s", { metadata: { labels: { x: "y" } } })
      expect(patched.status).toBe(200)
      yield* call("DELETE", "/api/v1/namespaces/default/secrets/s")
      const events = [
        yield* Queue.take(watch.events),
        yield* Queue.take(watch.events),
        yield* Queue.take(watch.events)
      ]
      expect(events.map((e) => [e.type, e.object.metadata.name])).toEqual([
        ["ADDED", "s"],
        ["MODIFIED", "s"],
        ["DELETED", "s"]
      ])
      expect(events[0]!.object).toMatchObject({ kind: "Secret", data: { a: "MQ==" } })
      expect(events[1]!.object.metadata.labels).toEqual({ x: "y" })
      const versions = events.map((e) => Number(e.object.metadata.resourceVersion))
      expect([...versions].sort((a, b) => a - b)).toEqual(versions)
      expect(new Set(versions).size).toBe(3)
      expect(yield* Queue.size(watch.events)).toBe(0)
    }))

  it.scoped("a watch without a resourceVersion starts with what exists; selectors and Tables apply", () =>
    Effect.gen(function*() {
      const { api, call } = yield* start
      yield* call("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "a", labels: { app: "x" } } })
      yield* call("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "b" } })
      const watch = yield* openWatch(
        api.url,
        api.caPem,
        "/api/v1/configmaps?watch=1&labelSelector=app%3Dx",
        api.adminToken,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
      )
      const first = yield* Queue.take(watch.events)
      expect(first).toMatchObject({
        type: "ADDED",
        object: { kind: "Table", rows: [{ cells: ["a", 0, expect.any(String)] }] }
      })
      yield* call("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "c" } })
      yield* call("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "d", labels: { app: "x" } } })
      expect((yield* Queue.take(watch.events)).object.rows[0].cells[0]).toBe("d")
    }))

  it.scoped("a watch ends after timeoutSeconds", () =>
    Effect.gen(function*() {
      const { api } = yield* start
      const watch = yield* openWatch(
        api.url,
        api.caPem,
        "/api/v1/namespaces?watch=true&timeoutSeconds=5",
        api.adminToken
      )
      expect((yield* Queue.take(watch.events)).type).toBe("ADDED")
      const ended = yield* Effect.fork(watch.ended)
      yield* TestClock.adjust("6 seconds")
      expect(yield* Fiber.join(ended)).toBe(200)
    }))

  it.scoped("a service account may not watch secrets", () =>
    Effect.gen(function*() {
      const { api } = yield* start
      const token = yield* api.issueToken({ namespace: "default", serviceAccount: "app" })
      const response = yield* requestJson(api.url, api.caPem, { path: "/api/v1/secrets?watch=true", token })
      expect(response.status).toBe(403)
      expect(response.body.message).toContain("cannot watch resource \"secrets\"")
    }))
})
