import { describe, expect, it } from "@effect/vitest"
import { applyJsonPatch } from "../src/internal/JsonPatch.ts"

const document = { metadata: { name: "s", labels: { a: "1" } }, data: { "k/v": "x" }, list: [1, 2, 3] }

describe("JSON patch", () => {
  it("applies add, remove, replace, move, copy and test in order, leaving the input alone", () => {
    const result = applyJsonPatch(document, [
      { op: "test", path: "/metadata/name", value: "s" },
      { op: "add", path: "/metadata/labels/b", value: "2" },
      { op: "replace", path: "/metadata/labels/a", value: "one" },
      { op: "remove", path: "/data/k~1v" },
      { op: "add", path: "/list/-", value: 4 },
      { op: "add", path: "/list/0", value: 0 },
      { op: "move", from: "/list/1", path: "/moved" },
      { op: "copy", from: "/metadata/name", path: "/copied" }
    ])
    expect(result).toEqual({
      _tag: "Ok",
      value: {
        metadata: { name: "s", labels: { a: "one", b: "2" } },
        data: {},
        list: [0, 2, 3, 4],
        moved: 1,
        copied: "s"
      }
    })
    expect(document.metadata.labels).toEqual({ a: "1" })
  })

  it("fails as a whole on a failed test, a missing path, a bad index or an unknown operation", () => {
    for (
      const operations of [
        [{ op: "test", path: "/metadata/name", value: "other" }],
        [{ op: "remove", path: "/nope/deeper" }],
        [{ op: "replace", path: "/list/9", value: 0 }],
        [{ op: "add", path: "/list/01", value: 0 }],
        [{ op: "frobnicate", path: "/data" }],
        [{ op: "add", path: "no-slash", value: 1 }],
        { op: "add" }
      ]
    ) {
      expect(applyJsonPatch(document, operations)._tag).toBe("Error")
    }
  })
})
