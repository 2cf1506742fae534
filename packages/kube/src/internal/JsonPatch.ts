/**
 * JSON Patch (RFC 6902) over plain JSON values, for `application/json-patch+json` PATCH requests to the dev API.
 */

type Result = { readonly _tag: "Ok"; readonly value: unknown } | { readonly _tag: "Error"; readonly reason: string }

class PatchError extends Error {}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const parsePointer = (pointer: unknown): Array<string> => {
  if (typeof pointer !== "string" || (pointer !== "" && !pointer.startsWith("/"))) {
    throw new PatchError(`${JSON.stringify(pointer)} is not a JSON pointer`)
  }
  return pointer === "" ? [] : pointer.slice(1).split("/").map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"))
}

const clone = (value: unknown): unknown => value === undefined ? undefined : JSON.parse(JSON.stringify(value))

const arrayIndex = (array: Array<unknown>, token: string, forInsert: boolean): number => {
  if (forInsert && token === "-") return array.length
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PatchError(`"${token}" is not an array index`)
  const index = Number(token)
  if (index > array.length || (!forInsert && index === array.length)) {
    throw new PatchError(`index ${index} is out of range`)
  }
  return index
}

/** The container that holds the last token of `path`, and that token. */
const parentOf = (root: unknown, path: Array<string>): { readonly parent: unknown; readonly key: string } => {
  let current = root
  for (const token of path.slice(0, -1)) {
    if (Array.isArray(current)) current = current[arrayIndex(current, token, false)]
    else if (isRecord(current) && token in current) current = current[token]
    else throw new PatchError(`path /${path.join("/")} does not exist`)
  }
  return { parent: current, key: path[path.length - 1]! }
}

const get = (root: unknown, path: Array<string>): unknown => {
  if (path.length === 0) return root
  const { key, parent } = parentOf(root, path)
  if (Array.isArray(parent)) return parent[arrayIndex(parent, key, false)]
  if (isRecord(parent) && key in parent) return parent[key]
  throw new PatchError(`path /${path.join("/")} does not exist`)
}

const remove = (root: unknown, path: Array<string>): unknown => {
  if (path.length === 0) throw new PatchError("the whole document cannot be removed")
  const { key, parent } = parentOf(root, path)
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, key, false), 1)[0]
  if (isRecord(parent) && key in parent) {
    const value = parent[key]
    delete parent[key]
    return value
  }
  throw new PatchError(`path /${path.join("/")} does not exist`)
}

const add = (root: unknown, path: Array<string>, value: unknown): unknown => {
  if (path.length === 0) return value
  const { key, parent } = parentOf(root, path)
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value)
  else if (isRecord(parent)) parent[key] = value
  else throw new PatchError(`path /${path.join("/")} has no parent object or array`)
  return root
}

/** Applies the operations in order to a copy of `document`; all of them, or none when one fails. */
export const applyJsonPatch = (document: unknown, operations: unknown): Result => {
  try {
    if (!Array.isArray(operations)) throw new PatchError("a JSON patch is an array of operations")
    let root = clone(document)
    for (const operation of operations) {
      if (!isRecord(operation)) throw new PatchError("each operation must be an object")
      const path = parsePointer(operation.path)
      switch (operation.op) {
        case "add":
          if (!("value" in operation)) throw new PatchError("add needs a value")
          root = add(root, path, clone(operation.value))
          break
        case "remove":
          remove(root, path)
          break
        case "replace":
          if (!("value" in operation)) throw new PatchError("replace needs a value")
          if (path.length === 0) root = clone(operation.value)
          else {
            remove(root, path)
            root = add(root, path, clone(operation.value))
          }
          break
        case "move": {
          const from = parsePointer(operation.from)
          root = add(root, path, remove(root, from))
          break
        }
        case "copy":
          root = add(root, path, clone(get(root, parsePointer(operation.from))))
          break
        case "test":
          if (JSON.stringify(get(root, path)) !== JSON.stringify(operation.value)) {
            throw new PatchError(`test failed at ${String(operation.path)}`)
          }
          break
        default:
          throw new PatchError(`unknown operation ${JSON.stringify(operation.op)}`)
      }
    }
    return { _tag: "Ok", value: root }
  } catch (error) {
    if (error instanceof PatchError) return { _tag: "Error", reason: error.message }
    throw error
  }
}
