/**
 * Raw HTTP(S) calls for the Vault dev server double's tests: any method (LIST included), any body, Vault's headers.
 */
import { Effect } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import * as Net from "node:net"

/** A response as the tests look at it: the status and the parsed JSON body, if any. */
export interface Reply {
  readonly status: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read Vault's JSON field by field
  readonly body: any
}

/** What to send. */
export interface CallOptions {
  readonly token?: string
  readonly body?: unknown
  readonly rawBody?: string
  readonly headers?: Record<string, string>
  readonly ca?: string
}

/** Sends one request to `${url}/v1/${path}` and reads the whole answer. */
export const call = (url: string, method: string, path: string, options: CallOptions = {}): Effect.Effect<Reply> =>
  Effect.async<Reply>((resume) => {
    const target = new URL(`${url}/v1/${path}`)
    const payload = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
    const request = (target.protocol === "https:" ? Https : Http).request(target, {
      method,
      headers: {
        ...(options.token === undefined ? {} : { "X-Vault-Token": options.token }),
        ...(payload === undefined ? {} : { "Content-Type": "application/json" }),
        ...options.headers
      },
      agent: false,
      ...(options.ca === undefined ? {} : { ca: options.ca })
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        resume(
          Effect.succeed({ status: response.statusCode ?? 0, body: text.length === 0 ? undefined : JSON.parse(text) })
        )
      })
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end(payload)
  })

/** Writes raw bytes on one connection and collects everything the server sends until it closes the connection. */
export const rawExchange = (url: string, bytes: string): Effect.Effect<string> =>
  Effect.async<string>((resume) => {
    const target = new URL(url)
    const socket = Net.connect(Number(target.port), target.hostname, () => socket.write(bytes))
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("close", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
    socket.on("error", (error) => resume(Effect.die(error)))
    return Effect.sync(() => socket.destroy())
  })
