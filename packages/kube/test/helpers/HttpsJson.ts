/**
 * A bare HTTPS JSON client for tests of the dev API: sends one request with node:https trusting the given CA and
 * returns the status, content type and parsed body.
 */
import { Effect } from "effect"
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
