/**
 * Watches on the Kubernetes dev API: what a watch request asks for, the backlog it starts with, and each change as the
 * JSON line the real API server streams.
 */
import { matchesSelectors, table, wantsTable } from "./DevApiObjects.ts"
import type { KubeObject, ResourceSpec } from "./DevApiResources.ts"
import type { ApiRequest, DevApiState } from "./DevApiState.ts"
import type { ApiResponse } from "./KubeStatus.ts"
import * as Status from "./KubeStatus.ts"

/** What a watch request asks to be told about; the server streams it as JSON lines. */
export interface Watch {
  readonly spec: ResourceSpec
  readonly namespace: string | undefined
  readonly query: URLSearchParams
  readonly table: boolean
  /** Changes after this resourceVersion come first; without one, ADDED events for what exists now do. */
  readonly since: number | undefined
  readonly timeoutSeconds: number | undefined
}

/** The answer to a watch request: the server turns it into a stream of events. */
export interface WatchResponse extends ApiResponse {
  readonly watch: Watch
}

/** Reads a watch request. */
export const startWatch = (
  spec: ResourceSpec,
  namespace: string | undefined,
  request: ApiRequest
): WatchResponse => {
  const since = Number(request.query.get("resourceVersion") || "0")
  const timeout = Number(request.query.get("timeoutSeconds") ?? "")
  return {
    status: 200,
    body: undefined,
    watch: {
      spec,
      namespace,
      query: request.query,
      table: wantsTable(request),
      since: Number.isInteger(since) && since > 0 ? since : undefined,
      timeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined
    }
  }
}

/** One watch event as the JSON line the API server streams, or undefined when the watch does not cover it. */
export const watchEventLine = (
  state: DevApiState,
  watch: Watch,
  event: { readonly type: string; readonly spec: ResourceSpec; readonly object: KubeObject },
  nowMillis: number
): string | undefined => {
  if (event.spec !== watch.spec) return undefined
  if (watch.namespace !== undefined && event.object.metadata.namespace !== watch.namespace) return undefined
  if (!matchesSelectors(event.object, watch.query)) return undefined
  const object = watch.table ? table(state, watch.spec, [event.object], nowMillis) : event.object
  return `${JSON.stringify({ type: event.type, object })}\n`
}

/**
 * The lines a watch starts with: the remembered changes after its resourceVersion, or ADDED for every object when it
 * has none; an ERROR with a 410 Expired Status when those changes are no longer remembered.
 */
export const watchBacklog = (state: DevApiState, watch: Watch, nowMillis: number): ReadonlyArray<string> => {
  const events = watch.since === undefined
    ? state.store.list(watch.spec, watch.namespace).map((object) => ({ type: "ADDED", spec: watch.spec, object }))
    : state.store.changesSince(watch.since)
  if (events === undefined) {
    const expired = Status.failure(
      410,
      "Expired",
      `too old resource version: ${watch.since} (${state.store.currentResourceVersion()})`
    )
    return [`${JSON.stringify({ type: "ERROR", object: expired.body })}\n`]
  }
  return events.flatMap((event) => watchEventLine(state, watch, event, nowMillis) ?? [])
}

/** Whether a response is a watch to stream. */
export const isWatch = (response: ApiResponse): response is WatchResponse => "watch" in response
