/**
 * The Kubernetes dev API's objects, in memory, with one resourceVersion counter shared by all kinds as etcd has.
 */
import type { KubeObject, ResourceSpec } from "./DevApiResources.ts"

/** The object store behind the dev API. */
export interface DevApiStore {
  readonly list: (spec: ResourceSpec, namespace: string | undefined) => ReadonlyArray<KubeObject>
  readonly get: (spec: ResourceSpec, namespace: string | undefined, name: string) => KubeObject | undefined
  readonly put: (spec: ResourceSpec, object: KubeObject) => void
  readonly remove: (spec: ResourceSpec, namespace: string | undefined, name: string) => void
  /** Removes every object in a namespace, as namespace deletion does. */
  readonly removeNamespaced: (namespace: string) => void
  readonly nextResourceVersion: () => string
  readonly currentResourceVersion: () => string
}

/** An empty store. */
export const makeStore = (): DevApiStore => {
  const objects = new Map<string, Map<string, KubeObject>>()
  let resourceVersion = 1000

  const bucket = (spec: ResourceSpec) => {
    const key = `${spec.group}/${spec.resource}`
    let found = objects.get(key)
    if (found === undefined) {
      found = new Map()
      objects.set(key, found)
    }
    return found
  }
  const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ""}/${name}`

  return {
    list: (spec, namespace) =>
      Array.from(bucket(spec).values())
        .filter((object) => namespace === undefined || object.metadata.namespace === namespace)
        .sort((a, b) =>
          (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
          a.metadata.name.localeCompare(b.metadata.name)
        ),
    get: (spec, namespace, name) => bucket(spec).get(keyOf(namespace, name)),
    put: (spec, object) => {
      bucket(spec).set(keyOf(object.metadata.namespace, object.metadata.name), object)
    },
    remove: (spec, namespace, name) => {
      bucket(spec).delete(keyOf(namespace, name))
    },
    removeNamespaced: (namespace) => {
      for (const kind of objects.values()) {
        for (const [key, object] of kind) {
          if (object.metadata.namespace === namespace) kind.delete(key)
        }
      }
    },
    nextResourceVersion: () => String(++resourceVersion),
    currentResourceVersion: () => String(resourceVersion)
  }
}
