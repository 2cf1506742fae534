/**
 * A bare HTTPS JSON client for tests of the dev API: sends one request with node:https trusting the given CA and
 * returns the status, content type and parsed body.
 */
import { Deferred, Effect, Queue } from "effect"
import * as Https from "node:https"

export interface JsonResponse {
  readonly status: number
  readonly contentType: string
  // Bodies are arbitrary JSON that tests index into freely.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any
}

export interface JsonRequest {
  readonly method?: string
  readonly path: string
  readonly token?: string | undefined
  readonly body?: unknown
  readonly headers?: Record<string, string>
}

/** Sends one request to `url` (the dev API's base URL) trusting `caPem`. */
export const requestJson = (url: string, caPem: string, request: JsonRequest): Effect.Effect<JsonResponse, Error> =>
  Effect.async<JsonResponse, Error>((resume) => {
    const payload = request.body === undefined
      ? undefined
      : request.body instanceof Uint8Array
      ? Buffer.from(request.body)
      : typeof request.body === "string"
      ? request.body
      : JSON.stringify(request.body)
    const req = Https.request(
      new URL(request.path, url),
      {
        method: request.method ?? "GET",
        ca: caPem,
        headers: {
          accept: "application/json",
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
          ...(request.token === undefined ? {} : { authorization: `Bearer ${request.token}` }),
          ...request.headers
        }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let body: unknown = text
          try {
            body = JSON.parse(text)
          } catch {
            // plain-text answers such as /healthz stay strings
          }
          resume(Effect.succeed({ status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "", body }))
        })
        res.on("error", (error) => resume(Effect.fail(error)))
      }
    )
    req.on("error", (error) => resume(Effect.fail(error)))
    if (payload !== undefined) req.write(payload)
    req.end()
    return Effect.sync(() => req.destroy())
  })

// Events are arbitrary JSON that tests index into freely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyJson = any

/** Opens a watch and delivers each JSON line it streams to the returned queue; the scope closes the request. */
export const openWatch = (url: string, caPem: string, path: string, token: string, accept = "application/json") =>
  Effect.gen(function*() {
    const events = yield* Queue.unbounded<{ readonly type: string; readonly object: AnyJson }>()
    const ended = yield* Deferred.make<number>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const req = Https.request(new URL(path, url), {
          ca: caPem,
          headers: { accept, authorization: `Bearer ${token}` }
        }, (res) => {
          let buffered = ""
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => {
            buffered += chunk
            for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
              Queue.unsafeOffer(events, JSON.parse(buffered.slice(0, newline)))
              buffered = buffered.slice(newline + 1)
            }
          })
          res.on("end", () => Deferred.unsafeDone(ended, Effect.succeed(res.statusCode ?? 0)))
        })
        req.on("error", () => Deferred.unsafeDone(ended, Effect.succeed(0)))
        req.end()
        return req
      }),
      (req) => Effect.sync(() => req.destroy())
    )
    return { events, ended: Deferred.await(ended) }
  })
