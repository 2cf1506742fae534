/**
 * Lets Node's HTTP server accept Vault's `LIST` method, which its parser rejects as unknown.
 *
 * Each connection is wrapped in a stream that follows the HTTP/1.1 request framing (heads, `Content-Length` and
 * chunked bodies) and renames `LIST` at the start of a request head to `BIND`, a method the parser knows and that no
 * Vault client sends; the router reads `BIND` back as `LIST`. Bodies pass through untouched.
 */
import type * as Net from "node:net"
import { Duplex } from "node:stream"

/** The method name a rewritten `LIST` request arrives with. */
export const listAlias = "BIND"

const maxHead = 64 * 1024
const headEnd = Buffer.from("\r\n\r\n")
const lineEnd = Buffer.from("\r\n")

type Framing =
  | { readonly _tag: "Head" }
  | { readonly _tag: "Body"; remaining: number }
  | { readonly _tag: "ChunkSize" }
  | { readonly _tag: "ChunkData"; remaining: number }
  | { readonly _tag: "Trailers" }
  | { readonly _tag: "Opaque" }

/** Rewrites `LIST` request lines on one connection; every other byte is passed on as it came. */
export class ListMethodRewriter {
  private framing: Framing = { _tag: "Head" }
  private pending: Buffer = Buffer.alloc(0)

  /** Feeds bytes from the client and returns the bytes to hand to the HTTP parser. */
  push(chunk: Buffer): Buffer {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const out: Array<Buffer> = []
    for (;;) {
      const framing = this.framing
      if (framing._tag === "Opaque") {
        out.push(this.take(this.pending.length))
        break
      }
      if (framing._tag === "Head") {
        const end = this.pending.indexOf(headEnd)
        if (end < 0) {
          // A head this large is refused by the parser anyway; stop following the framing.
          if (this.pending.length > maxHead) this.framing = { _tag: "Opaque" }
          else break
          continue
        }
        const head = this.take(end + headEnd.length)
        out.push(rewriteHead(head))
        this.framing = bodyFraming(head.toString("latin1"))
        continue
      }
      if (framing._tag === "Body" || framing._tag === "ChunkData") {
        if (this.pending.length === 0) break
        const size = Math.min(framing.remaining, this.pending.length)
        out.push(this.take(size))
        framing.remaining -= size
        if (framing.remaining === 0) {
          this.framing = framing._tag === "Body" ? { _tag: "Head" } : { _tag: "ChunkSize" }
        }
        continue
      }
      const end = this.pending.indexOf(lineEnd)
      if (end < 0) {
        if (this.pending.length > maxHead) this.framing = { _tag: "Opaque" }
        else break
        continue
      }
      const line = this.take(end + lineEnd.length)
      out.push(line)
      if (framing._tag === "Trailers") {
        if (line.length === lineEnd.length) this.framing = { _tag: "Head" }
        continue
      }
      const size = Number.parseInt(line.toString("latin1").split(";")[0]!.trim(), 16)
      if (!Number.isFinite(size)) this.framing = { _tag: "Opaque" }
      else if (size === 0) this.framing = { _tag: "Trailers" }
      // The chunk's data is followed by its own CRLF.
      else this.framing = { _tag: "ChunkData", remaining: size + lineEnd.length }
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out)
  }

  private take(size: number): Buffer {
    const taken = this.pending.subarray(0, size)
    this.pending = this.pending.subarray(size)
    return taken
  }
}

const rewriteHead = (head: Buffer): Buffer => {
  // Blank lines before a request line are allowed by HTTP/1.1 and skipped by the parser.
  let start = 0
  while (head[start] === 0x0d || head[start] === 0x0a) start++
  if (head.toString("latin1", start, start + 5) !== "LIST ") return head
  const copy = Buffer.from(head)
  copy.write(listAlias, start, "latin1")
  return copy
}

const bodyFraming = (head: string): Framing => {
  const lines = head.split("\r\n")
  let length = 0
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    if (colon < 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim().toLowerCase()
    if (name === "transfer-encoding" && value.includes("chunked")) return { _tag: "ChunkSize" }
    if (name === "content-length") length = Number.parseInt(value, 10)
    if (name === "upgrade") return { _tag: "Opaque" }
  }
  if (!Number.isFinite(length) || length < 0) return { _tag: "Opaque" }
  return length > 0 ? { _tag: "Body", remaining: length } : { _tag: "Head" }
}

/**
 * Wraps a client connection so that the HTTP server reads its requests with `LIST` renamed. Writes, end and destroy
 * go straight to the connection.
 */
export const acceptListMethod = (socket: Net.Socket): Duplex => {
  const rewriter = new ListMethodRewriter()
  const wrapper = new Duplex({
    read() {
      socket.resume()
    },
    write(chunk: Buffer, _encoding, callback) {
      if (socket.write(chunk)) callback()
      else socket.once("drain", () => callback())
    },
    final(callback) {
      socket.end(callback)
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined)
      callback(error)
    }
  })
  // The HTTP server times out idle keep-alive connections through these when the connection offers them.
  socket.on("timeout", () => wrapper.emit("timeout"))
  Object.assign(wrapper, {
    setTimeout: (ms: number, callback?: () => void) => {
      socket.setTimeout(ms)
      if (callback !== undefined) wrapper.once("timeout", callback)
      return wrapper
    },
    setNoDelay: (noDelay?: boolean) => {
      socket.setNoDelay(noDelay)
      return wrapper
    },
    setKeepAlive: (enable?: boolean, delay?: number) => {
      socket.setKeepAlive(enable, delay)
      return wrapper
    }
  })
  socket.on("data", (chunk: Buffer) => {
    const rewritten = rewriter.push(chunk)
    if (rewritten.length > 0 && !wrapper.push(rewritten)) socket.pause()
  })
  socket.on("end", () => wrapper.push(null))
  socket.on("error", (error) => wrapper.destroy(error))
  socket.on("close", () => wrapper.destroy())
  return wrapper
}
