import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { ListMethodRewriter } from "../src/internal/devserver/listMethod.ts"
import { capabilitiesOn, parsePolicy } from "../src/internal/devserver/policy.ts"
import type { Policy } from "../src/internal/devserver/policy.ts"

interface RawRequest {
  readonly method: "LIST" | "GET" | "POST" | "PUT"
  readonly body: string
  readonly chunked: boolean
}

const bodyText = FastCheck.oneof(
  FastCheck.string(),
  FastCheck.constantFrom("LIST /v1/x HTTP/1.1\r\n\r\n", "\r\n\r\nLIST ", "0\r\n\r\n", "5\r\nLIST \r\n")
)

const request: FastCheck.Arbitrary<RawRequest> = FastCheck.record({
  method: FastCheck.constantFrom("LIST" as const, "GET" as const, "POST" as const, "PUT" as const),
  body: bodyText,
  chunked: FastCheck.boolean()
})

const encode = (raw: RawRequest, method: string): string => {
  const head = `${method} /v1/secret/metadata/app HTTP/1.1\r\nHost: vault\r\n`
  if (raw.body.length === 0) return `${head}\r\n`
  const bytes = Buffer.from(raw.body, "utf8")
  if (!raw.chunked) return `${head}Content-Length: ${bytes.length}\r\n\r\n${raw.body}`
  return `${head}Transfer-Encoding: chunked\r\n\r\n${bytes.length.toString(16)};ext=1\r\n${raw.body}\r\n0\r\n\r\n`
}

describe("VaultDevServer: the LIST method on Node's HTTP parser", () => {
  it.prop(
    "renames LIST only at the start of each request, however the bytes are split",
    [FastCheck.array(request, { minLength: 1, maxLength: 6 }), FastCheck.array(FastCheck.nat(400), { maxLength: 8 })],
    ([requests, cuts]) => {
      const input = Buffer.from(requests.map((raw) => encode(raw, raw.method)).join(""), "utf8")
      const expected = Buffer.from(
        requests.map((raw) => encode(raw, raw.method === "LIST" ? "BIND" : raw.method)).join(""),
        "utf8"
      )
      const points = Array.from(new Set(cuts.map((cut) => cut % (input.length + 1)))).sort((a, b) => a - b)
      const rewriter = new ListMethodRewriter()
      const output: Array<Buffer> = []
      let from = 0
      for (const point of [...points, input.length]) {
        output.push(rewriter.push(input.subarray(from, point)))
        from = point
      }
      expect(Buffer.concat(output).toString("latin1")).toBe(expected.toString("latin1"))
    }
  )
})

const policies = (...texts: ReadonlyArray<string>): Array<Policy> =>
  texts.map((text, index) => {
    const parsed = parsePolicy(`p${index}`, text)
    if ("error" in parsed) throw new Error(parsed.error)
    return parsed
  })

const granted = (set: ReadonlyArray<Policy>, path: string): Array<string> =>
  Array.from(capabilitiesOn(set, path)).sort()

describe("VaultDevServer: ACL rule priority (docs: concepts/policies, priority matching)", () => {
  it("picks the most specific rule as Vault does", () => {
    const set = policies(`
      path "secret/*" { capabilities = ["read"] }
      path "secret/data/*" { capabilities = ["list"] }
      path "secret/data/team/+" { capabilities = ["update"] }
      path "secret/data/+/db" { capabilities = ["delete"] }
      path "secret/data/team/db" { capabilities = ["create"] }
      path "secret/data/team/x*" { capabilities = ["patch"] }
    `)
    const rows: Array<[string, Array<string>]> = [
      ["secret/other", ["read"]],
      ["secret/data/anything/deep", ["list"]],
      ["secret/data/team/db", ["create"]],
      ["secret/data/team/cache", ["update"]],
      ["secret/data/other/db", ["delete"]],
      // The first wildcard comes later in "secret/data/team/x*" than in "secret/data/team/+".
      ["secret/data/team/xray", ["patch"]],
      ["kv/secret", []]
    ]
    for (const [path, expected] of rows) {
      expect({ path, granted: granted(set, path) }).toEqual({ path, granted: expected })
    }
  })

  it("merges identical paths across policies and lets deny win", () => {
    const set = policies(
      "path \"secret/data/a\" { capabilities = [\"read\"] }",
      "path \"secret/data/a\" { capabilities = [\"update\"] }",
      "path \"secret/data/b\" { capabilities = [\"read\"] }",
      "path \"secret/data/b\" { capabilities = [\"deny\"] }",
      "{ \"path\": { \"secret/data/c\": { \"capabilities\": [\"list\"] } } }",
      "path \"secret/data/d\" { policy = \"write\" }"
    )
    expect(granted(set, "secret/data/a")).toEqual(["read", "update"])
    expect(granted(set, "secret/data/b")).toEqual(["deny"])
    expect(granted(set, "secret/data/c")).toEqual(["list"])
    expect(granted(set, "secret/data/d")).toEqual(["create", "delete", "list", "patch", "read", "update"])
  })

  it("refuses what it cannot enforce and says where", () => {
    const rows: Array<[string, RegExp]> = [
      ["path \"a/*/b\" { capabilities = [\"read\"] }", /only allowed at the end/],
      ["path \"a\" { capabilities = [\"read\"] allowed_parameters = { \"x\" = [] } }", /allowed_parameters/],
      ["path \"a\" {\n  capabilities = [\"fly\"]\n}", /invalid capability "fly"/],
      ["key \"a\" {}", /invalid key "key" on line 1/],
      ["path \"a\" {\n  capabilities = [\"read\"]", /expected/]
    ]
    for (const [text, message] of rows) {
      const parsed = parsePolicy("bad", text)
      expect("error" in parsed ? parsed.error : "parsed").toMatch(message)
    }
  })
})
