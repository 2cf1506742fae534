/**
 * The Kubernetes dev API's objects, in memory, with one resourceVersion counter shared by all kinds as etcd has.
 */
import type { KubeObject, ResourceSpec } from "./DevApiResources.ts"

/** A change to a stored object, as a watch reports it. */
export interface StoreEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly spec: ResourceSpec
  readonly object: KubeObject
}

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
  /**
   * The changes after `resourceVersion` that are still remembered (the last 1000), or undefined when some of them
   * have been forgotten.
   */
  readonly changesSince: (resourceVersion: number) => ReadonlyArray<StoreEvent> | undefined
  /** Calls `listener` after every change until the returned function is called. */
  readonly subscribe: (listener: (event: StoreEvent) => void) => () => void
}

const historyLength = 1000

/** An empty store. */
export const makeStore = (): DevApiStore => {
  const objects = new Map<string, Map<string, KubeObject>>()
  let resourceVersion = 1000
  const listeners = new Set<(event: StoreEvent) => void>()
  const history: Array<StoreEvent> = []
  let forgottenUpTo = resourceVersion
  const publish = (event: StoreEvent) => {
    history.push(event)
    if (history.length > historyLength) {
      forgottenUpTo = Number(history.shift()!.object.metadata.resourceVersion)
    }
    for (const listener of listeners) listener(event)
  }
  // A deletion is an event of its own, with a resourceVersion newer than the object's last one.
  const deleted = (spec: ResourceSpec, object: KubeObject) =>
    publish({
      type: "DELETED",
      spec,
      object: { ...object, metadata: { ...object.metadata, resourceVersion: String(++resourceVersion) } }
    })

  const specs = new Map<string, ResourceSpec>()
  const bucket = (spec: ResourceSpec) => {
    const key = `${spec.group}/${spec.resource}`
    let found = objects.get(key)
    if (found === undefined) {
      found = new Map()
      objects.set(key, found)
      specs.set(key, spec)
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
      const key = keyOf(object.metadata.namespace, object.metadata.name)
      const type = bucket(spec).has(key) ? "MODIFIED" : "ADDED"
      bucket(spec).set(key, object)
      publish({ type, spec, object })
    },
    remove: (spec, namespace, name) => {
      const key = keyOf(namespace, name)
      const object = bucket(spec).get(key)
      if (object === undefined) return
      bucket(spec).delete(key)
      deleted(spec, object)
    },
    removeNamespaced: (namespace) => {
      for (const [kindKey, kind] of objects) {
        for (const [key, object] of kind) {
          if (object.metadata.namespace !== namespace) continue
          kind.delete(key)
          const spec = specs.get(kindKey)
          if (spec !== undefined) deleted(spec, object)
        }
      }
    },
    changesSince: (since) =>
      since < forgottenUpTo
        ? undefined
        : history.filter((event) => Number(event.object.metadata.resourceVersion) > since),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    nextResourceVersion: () => String(++resourceVersion),
    currentResourceVersion: () => String(resourceVersion)
  }
}
