/**
 * A bare Node.js relay for beacon protocol version 1, with no limits, metrics, logs, tracing or drain: the yardstick
 * that the beacon is compared with in the same benchmark run. Run as
 * `node BareRelay.ts --tls-cert FILE --tls-key FILE [--port N]`; it prints `{"listening":PORT}` once it listens.
 */
import { ErrorCode, type ErrorCodeName } from "@cloudtaser/protocol/ErrorCode"
import { challenge, encodeFrame, error, type Frame, paired, ping, Role, waiting } from "@cloudtaser/protocol/Frame"
import { FrameDecoder } from "@cloudtaser/protocol/FrameDecoder"
import { type HelloPayload, MAX_WAIT_UNBOUNDED, proofInput } from "@cloudtaser/protocol/Hello"
import { createHash, randomBytes, verify, X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { createServer, type TLSSocket } from "node:tls"
import { parseArgs } from "node:util"

const HELLO_TIMEOUT_MS = 10_000
const PING_INTERVAL_MS = 20_000
const CLOCK_SKEW_MS = 5 * 60_000
const PURPOSE: Record<Role, string> = { [Role.bridge]: "1.3.6.1.5.5.7.3.1", [Role.broker]: "1.3.6.1.5.5.7.3.2" }

interface Client {
  readonly socket: TLSSocket
  state: "hello" | "waiting" | "paired" | "ready" | "relaying" | "closed"
  queue: string
  sessionId?: Uint8Array
  /** PINGs sent and not answered yet, oldest first. */
  pings: Array<Buffer>
  peer?: Client
  /** Bytes that came after READY, for the peer. */
  early?: Uint8Array
  timer?: NodeJS.Timeout
  expiry?: NodeJS.Timeout
}

/** Waiting clients by info hash (hex) and role, the longest waiter first. */
const waiters = new Map<string, Array<Client>>()

const send = (client: Client, frame: Frame) => client.socket.write(encodeFrame(frame))

const stopWaiting = (client: Client) => {
  clearTimeout(client.timer)
  clearTimeout(client.expiry)
  const queue = waiters.get(client.queue)
  const at = queue?.indexOf(client) ?? -1
  if (at >= 0) queue!.splice(at, 1)
  if (queue?.length === 0) waiters.delete(client.queue)
}

const refuse = (client: Client, code: ErrorCodeName, reason: string) => {
  stopWaiting(client)
  client.state = "closed"
  client.socket.removeAllListeners("data")
  client.socket.end(encodeFrame(error(ErrorCode[code], reason)), () => client.socket.destroy())
}

const valid = (certificate: X509Certificate, now: number) =>
  certificate.validFromDate.getTime() - CLOCK_SKEW_MS <= now && now <= certificate.validToDate.getTime() + CLOCK_SKEW_MS

/** PROTOCOL.md, "The exchange", step 3: the error to send, or undefined when the HELLO is accepted. */
const checkHello = (hello: HelloPayload, nonce: Uint8Array): ErrorCodeName | undefined => {
  if (!createHash("sha256").update(hello.caDer).digest().equals(hello.infoHash)) return "hash_mismatch"
  try {
    const ca = new X509Certificate(hello.caDer)
    const leaf = new X509Certificate(hello.leafDer)
    if (!ca.ca || !leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return "cert_invalid"
    if (!valid(ca, Date.now()) || !valid(leaf, Date.now())) return "cert_invalid"
    if (!(leaf.keyUsage ?? []).includes(PURPOSE[hello.role])) return "cert_invalid"
    const key = leaf.publicKey
    const curve = key.asymmetricKeyDetails?.namedCurve
    const digest = key.asymmetricKeyType === "ed25519"
      ? null
      : curve === "prime256v1"
      ? "sha256"
      : curve === "secp384r1"
      ? "sha384"
      : undefined
    if (digest === undefined) return "cert_invalid"
    return verify(digest, proofInput(nonce, hello.role, hello.infoHash), key, hello.signature)
      ? undefined
      : "proof_invalid"
  } catch {
    return "cert_invalid"
  }
}

/** Takes the longest waiter under `queue`; a waiter that left two PINGs unanswered is closed, never paired. */
const takeWaiter = (queue: string): Client | undefined => {
  const waiting = waiters.get(queue) ?? []
  let waiter = waiting.shift()
  while (waiter !== undefined && waiter.pings.length >= 2) {
    waiter.socket.destroy()
    waiter = waiting.shift()
  }
  if (waiting.length === 0) waiters.delete(queue)
  return waiter
}

const wait = (client: Client, hello: HelloPayload) => {
  if (hello.maxWaitMs === 0) return refuse(client, "wait_expired", "no peer was waiting and the HELLO asked not to")
  client.state = "waiting"
  client.sessionId = randomBytes(16)
  const queue = waiters.get(client.queue)
  if (queue === undefined) waiters.set(client.queue, [client])
  else queue.push(client)
  send(client, waiting(client.sessionId, PING_INTERVAL_MS))
  client.timer = setInterval(() => {
    if (client.pings.length >= 2) return client.socket.destroy()
    client.pings.push(randomBytes(8))
    send(client, ping(client.pings.at(-1)!))
  }, PING_INTERVAL_MS)
  if (hello.maxWaitMs !== MAX_WAIT_UNBOUNDED) {
    client.expiry = setTimeout(() => refuse(client, "wait_expired", "no peer arrived in time"), hello.maxWaitMs)
  }
}

const pair = (waiter: Client, client: Client) => {
  clearTimeout(waiter.timer)
  clearTimeout(waiter.expiry)
  for (const [one, other] of [[waiter, client], [client, waiter]] as const) {
    one.state = "paired"
    one.peer = other
    send(one, paired(waiter.sessionId!))
    one.timer = setTimeout(() => one.socket.destroy(), HELLO_TIMEOUT_MS)
  }
}

const onHello = (client: Client, hello: HelloPayload, nonce: Uint8Array) => {
  clearTimeout(client.timer)
  const refusal = checkHello(hello, nonce)
  if (refusal !== undefined) return refuse(client, refusal, `the HELLO was refused: ${refusal}`)
  const hash = Buffer.from(hello.infoHash).toString("hex")
  client.queue = `${hash}/${hello.role}`
  const waiter = takeWaiter(`${hash}/${hello.role === Role.bridge ? Role.broker : Role.bridge}`)
  if (waiter === undefined) wait(client, hello)
  else pair(waiter, client)
}

const onReady = (client: Client, rest: Uint8Array) => {
  clearTimeout(client.timer)
  client.state = "ready"
  client.socket.removeAllListeners("data")
  client.socket.pause()
  if (rest.length > 0) client.early = rest
  const peer = client.peer!
  if (peer.state !== "ready") return
  client.state = peer.state = "relaying"
  // What came with READY was sent before anything the pipes will carry.
  if (client.early !== undefined) peer.socket.write(client.early)
  if (peer.early !== undefined) client.socket.write(peer.early)
  client.socket.pipe(peer.socket)
  peer.socket.pipe(client.socket)
}

const onConnection = (socket: TLSSocket) => {
  socket.setNoDelay(true)
  const client: Client = { socket, state: "hello", queue: "", pings: [] }
  const nonce = randomBytes(32)
  const decoder = new FrameDecoder()
  socket.on("data", (chunk: Buffer) => {
    decoder.push(chunk)
    for (let result = decoder.next(); result._tag !== "NeedMore"; result = decoder.next()) {
      // Once PAIRED is sent, this direction belongs to the peer: no ERROR frame can go there.
      if (result._tag === "Failed" && client.state === "paired") return socket.destroy()
      if (result._tag === "Failed") return refuse(client, result.error.reason, result.error.message)
      const frame = result.frame
      if (frame._tag === "Hello" && client.state === "hello") onHello(client, frame, nonce)
      else if (frame._tag === "Pong" && (client.state === "waiting" || client.state === "paired")) {
        const answered = client.pings.findIndex((sent) => sent.equals(frame.data))
        client.pings.splice(0, answered + 1)
      } else if (frame._tag === "Ready" && client.state === "paired") return onReady(client, decoder.takeRemaining())
      else if (client.state === "paired") return socket.destroy()
      else return refuse(client, "bad_frame", `a ${frame._tag} frame is out of order`)
      if (socket.writableEnded) return // refused: nothing after the refused frame is acted on
    }
  })
  // Before READY a half-close means the client has gone; while relaying, the pipe passes it on.
  socket.on("end", () => {
    if (client.state !== "relaying") socket.destroy()
  })
  socket.on("error", () => socket.destroy())
  socket.on("close", (hadError) => {
    stopWaiting(client)
    const clean = client.state === "relaying" && !hadError && socket.readableEnded && socket.writableFinished
    if (!clean) client.peer?.socket.destroy()
  })
  client.timer = setTimeout(() => refuse(client, "hello_timeout", "no HELLO within 10 s"), HELLO_TIMEOUT_MS)
  send(client, challenge(nonce))
}

const { values } = parseArgs({
  options: { "tls-cert": { type: "string" }, "tls-key": { type: "string" }, port: { type: "string", default: "0" } }
})
const server = createServer({
  cert: readFileSync(values["tls-cert"]!),
  key: readFileSync(values["tls-key"]!),
  ALPNProtocols: ["cloudtaser-beacon/1"],
  allowHalfOpen: true
}, onConnection)
server.listen({ host: "127.0.0.1", port: Number(values.port) }, () => {
  process.stdout.write(`${JSON.stringify({ listening: (server.address() as AddressInfo).port })}\n`)
})
process.on("SIGTERM", () => process.exit(0))
