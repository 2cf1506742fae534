import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { handle } from "../src/internal/DevApiHandler.ts"
import { seed } from "../src/internal/DevApiObjects.ts"
import type { ApiRequest, DevApiState } from "../src/internal/DevApiState.ts"
import { makeStore } from "../src/internal/DevApiStore.ts"
import { isWatch, watchBacklog } from "../src/internal/DevApiWatch.ts"
import { makeTokenAuthority } from "../src/internal/ServiceAccountTokens.ts"

const authority = makeTokenAuthority()

const makeState = (): DevApiState => {
  const state: DevApiState = {
    store: makeStore(),
    authority,
    adminToken: "admin-token",
    apiAudiences: [authority.issuer],
    serverAddress: "127.0.0.1:6443"
  }
  seed(state, Date.UTC(2026, 0, 1))
  return state
}

const request = (method: string, path: string, body: unknown, contentType = "application/json"): ApiRequest => {
  const url = new URL(path, "https://127.0.0.1")
  return {
    method,
    path: url.pathname,
    query: url.searchParams,
    accept: "application/json",
    contentType,
    authorization: "Bearer admin-token",
    body: body instanceof Uint8Array ? body : new TextEncoder().encode(JSON.stringify(body))
  }
}

const paths = [
  "/api/v1/namespaces",
  "/api/v1/namespaces/default/secrets",
  "/api/v1/namespaces/default/secrets/s",
  "/api/v1/namespaces/default/configmaps",
  "/api/v1/namespaces/default/configmaps/c",
  "/api/v1/namespaces/default/serviceaccounts",
  "/api/v1/namespaces/default/serviceaccounts/default",
  "/api/v1/namespaces/default/serviceaccounts/default/token",
  "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
  "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/b",
  "/apis/authentication.k8s.io/v1/tokenreviews",
  "/api/v1/namespaces/%E0%A4%A",
  "/api/v1/namespaces/default/secrets/a%2Fb"
]

const json = fc.jsonValue({ maxDepth: 4 })
const objectish = fc.record({
  apiVersion: fc.option(fc.constantFrom("v1", "rbac.authorization.k8s.io/v1", "authentication.k8s.io/v1", "x")),
  kind: fc.option(fc.constantFrom("Secret", "ConfigMap", "Namespace", "TokenReview", "TokenRequest", "Pod")),
  metadata: fc.option(fc.oneof(
    json,
    fc.record({
      name: fc.option(fc.oneof(fc.constantFrom("s", "c", "b", "default", "Bad Name", ""), fc.string())),
      namespace: fc.option(fc.oneof(fc.constantFrom("default", "", "other"), json)),
      labels: fc.option(json),
      resourceVersion: fc.option(json)
    }, { requiredKeys: [] })
  )),
  data: fc.option(json),
  stringData: fc.option(json),
  roleRef: fc.option(json),
  subjects: fc.option(json),
  spec: fc.option(json)
}, { requiredKeys: [] })

describe("the dev API's request handling on arbitrary input", () => {
  it.prop(
    "answers any body on any path with a Kubernetes status, never a failure of its own",
    {
      method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE"),
      path: fc.constantFrom(...paths),
      body: fc.oneof(
        json,
        objectish,
        fc.uint8Array({ maxLength: 64 }),
        fc.array(
          fc.record({
            op: fc.constantFrom("add", "remove", "replace", "move", "copy", "test", "other"),
            path: fc.constantFrom("", "/", "/metadata/name", "/metadata/labels/a", "/data/x", "/x/0", "/list/-"),
            from: fc.constantFrom("/metadata", "/data", "/nope"),
            value: json
          }, { requiredKeys: ["op"] }),
          { maxLength: 4 }
        )
      ),
      contentType: fc.constantFrom(
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/vnd.kubernetes.protobuf",
        "text/plain"
      )
    },
    ({ body, contentType, method, path }) => {
      const state = makeState()
      const response = handle(state, request(method, path, body, contentType), Date.UTC(2026, 0, 1))
      expect([200, 201, 400, 403, 404, 405, 409, 415, 422]).toContain(response.status)
      if (response.status >= 400) {
        expect(response.body).toMatchObject({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          code: response.status
        })
      }
      // Whatever was stored is still listed and served as Tables.
      for (const listPath of ["/api/v1/namespaces/default/secrets", "/api/v1/namespaces/default/configmaps"]) {
        const listed = handle(
          state,
          {
            ...request("GET", `${listPath}?labelSelector=a%3Db,!c`, {}),
            accept: "application/json;as=Table;v=v1;g=meta.k8s.io"
          },
          Date.UTC(2026, 0, 2)
        )
        expect(listed.status).toBe(200)
      }
    },
    { fastCheck: { numRuns: 400 } }
  )
})

describe("watch backlogs", () => {
  const watchFrom = (state: DevApiState, path: string) => {
    const response = handle(state, request("GET", path, {}), Date.UTC(2026, 0, 1))
    if (!isWatch(response)) throw new Error(`not a watch: ${JSON.stringify(response.body)}`)
    return watchBacklog(state, response.watch, Date.UTC(2026, 0, 1)).map((line) => JSON.parse(line))
  }
  const create = (state: DevApiState, name: string) =>
    handle(state, request("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name } }), 0).body as {
      metadata: { resourceVersion: string }
    }

  it("replays the changes after a resourceVersion, and reports 410 Expired once they are forgotten", () => {
    const state = makeState()
    const first = create(state, "first")
    create(state, "second")
    handle(state, request("DELETE", "/api/v1/namespaces/default/configmaps/first", {}), 0)
    const replay = watchFrom(
      state,
      `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${first.metadata.resourceVersion}`
    )
    expect(replay.map((event) => [event.type, event.object.metadata.name])).toEqual([
      ["ADDED", "second"],
      ["DELETED", "first"]
    ])
    expect(watchFrom(state, "/api/v1/namespaces/default/configmaps?watch=true").map((e) => e.object.metadata.name))
      .toEqual(["second"])

    for (let index = 0; index < 1000; index++) create(state, `filler-${index}`)
    const expired = watchFrom(
      state,
      `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${first.metadata.resourceVersion}`
    )
    expect(expired).toEqual([
      {
        type: "ERROR",
        object: expect.objectContaining({ kind: "Status", reason: "Expired", code: 410 })
      }
    ])
  })
})
