/**
 * The HTTP(S) front of the Vault dev server double: reads requests off node:http, hands them to the router and writes
 * Vault's JSON back.
 */
import { Cause, Effect, Runtime } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as Tls from "node:tls"
import { acceptListMethod, listAlias } from "./listMethod.ts"
import type { DevRequest, DevResponse, Method } from "./reply.ts"
import { failure } from "./reply.ts"
import { route } from "./router.ts"
import type { DevState } from "./state.ts"

/** Vault refuses request bodies larger than 32 MiB. */
const maxBody = 32 * 1024 * 1024

const knownMethods: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "LIST"])

const tokenOf = (request: Http.IncomingMessage): string | undefined => {
  const header = request.headers["x-vault-token"]
  if (typeof header === "string" && header.length > 0) return header
  const authorization = request.headers.authorization
  if (authorization !== undefined && /^bearer\s+/i.test(authorization)) return authorization.replace(/^bearer\s+/i, "")
  return undefined
}

const headerValue = (value: string | Array<string> | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value

const readBody = (request: Http.IncomingMessage): Promise<Buffer | "too-large"> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBody) chunks.push(chunk)
    })
    request.on("end", () => resolve(size > maxBody ? "too-large" : Buffer.concat(chunks)))
    request.on("error", reject)
  })

const parse = async (request: Http.IncomingMessage): Promise<DevRequest | DevResponse> => {
  const url = new URL(request.url ?? "/", "http://vault.invalid")
  const rawMethod = request.method === listAlias ? "LIST" : (request.method ?? "GET")
  const body = await readBody(request)
  if (body === "too-large") return failure(413, "http: request body too large")
  if (!url.pathname.startsWith("/v1/")) return failure(404)
  if (!knownMethods.has(rawMethod)) return failure(405)
  let parsed: unknown = {}
  const text = body.toString("utf8").trim()
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text)
    } catch (error) {
      return failure(400, `failed to parse JSON input: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return failure(400, "failed to parse JSON input: the body must be a JSON object")
    }
  }
  let path: string
  try {
    path = decodeURIComponent(url.pathname.slice(4)).replace(/\/{2,}/g, "/")
  } catch {
    return failure(400, "the request path is not valid percent-encoded UTF-8")
  }
  const listQuery = url.searchParams.get("list")
  const method: Method = rawMethod === "GET" && (listQuery === "true" || listQuery === "1")
    ? "LIST"
    : rawMethod as Method
  return {
    method,
    path,
    query: url.searchParams,
    body: parsed as Record<string, unknown>,
    token: tokenOf(request),
    contentType: request.headers["content-type"],
    wrapTtl: headerValue(request.headers["x-vault-wrap-ttl"])
  }
}

const write = (response: Http.ServerResponse, reply: DevResponse): void => {
  response.setHeader("Cache-Control", "no-store")
  if (reply.body === undefined) {
    response.writeHead(reply.status)
    response.end()
    return
  }
  const text = JSON.stringify(reply.body)
  response.writeHead(reply.status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text)
  })
  response.end(text)
}

/** A listening dev server and how to stop it. */
export interface Listening {
  readonly port: number
  readonly close: () => Promise<void>
}

/** Starts listening; requests run on `runtime`, so they see its `Clock`. */
export const listen = (options: {
  readonly state: DevState
  readonly runtime: Runtime.Runtime<never>
  readonly host: string
  readonly port: number
  readonly tls: { readonly certPem: string; readonly keyPem: string } | undefined
}): Promise<Listening> => {
  const run = Runtime.runPromise(options.runtime)
  const connections = new Set<Duplex>()
  const http = Http.createServer({ keepAliveTimeout: 5_000 }, (request, response) => {
    parse(request).then(
      (parsed) =>
        "status" in parsed ? write(response, parsed) : run(
          route(options.state, parsed).pipe(
            Effect.tap((reply) =>
              Effect.logDebug("Vault dev server request").pipe(
                Effect.annotateLogs({ method: parsed.method, path: parsed.path, status: reply.status })
              )
            ),
            Effect.catchAllCause((cause) =>
              Effect.logWarning("the Vault dev server failed to serve a request").pipe(
                Effect.annotateLogs({ path: parsed.path, cause: Cause.pretty(cause) }),
                Effect.as(failure(500, "internal error in the Vault dev server double"))
              )
            ),
            Effect.annotateLogs({ component: "vault-dev-server" })
          )
        ).then((reply) => write(response, reply)),
      () => write(response, failure(400, "failed to read the request body"))
    ).catch(() => response.destroy())
  })
  http.on("clientError", (_error, socket) => socket.destroy())
  const adopt = (socket: Net.Socket) => {
    const wrapped = acceptListMethod(socket)
    connections.add(wrapped)
    wrapped.on("close", () => connections.delete(wrapped))
    http.emit("connection", wrapped)
  }
  const listener: Net.Server = options.tls === undefined
    ? Net.createServer(adopt)
    : Tls.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, adopt)
  if (options.tls !== undefined) listener.on("tlsClientError", () => undefined)
  return new Promise((resolve, reject) => {
    listener.once("error", reject)
    listener.listen(options.port, options.host, () => {
      listener.off("error", reject)
      const address = listener.address() as Net.AddressInfo
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            listener.close(() => done())
            http.close()
            for (const connection of connections) connection.destroy()
          })
      })
    })
  })
}
