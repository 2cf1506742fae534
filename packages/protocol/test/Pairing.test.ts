import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { Role } from "../src/Frame.ts"
import { Pairing } from "../src/Pairing.ts"
import type { ArriveOutcome, Limit, PairingLimits } from "../src/Pairing.ts"

const wide: PairingLimits = { perHash: 100, perSource: 100, total: 100 }
const bridge = (id: string, at: number, hash = "h", source = "s", expiresAt?: number) => ({
  id,
  role: 1 as const,
  hash,
  source,
  at,
  expiresAt
})
const broker = (id: string, at: number, hash = "h", source = "s", expiresAt?: number) => ({
  id,
  role: 2 as const,
  hash,
  source,
  at,
  expiresAt
})

describe("Pairing", () => {
  it("pairs opposite roles of the same hash, the longest waiter first", () => {
    const pairing = new Pairing<string>(wide)
    expect(pairing.arrive(bridge("b1", 0))._tag).toBe("Waiting")
    expect(pairing.arrive(bridge("b2", 1))._tag).toBe("Waiting")
    expect(pairing.arrive(broker("k0", 2, "other"))._tag).toBe("Waiting")
    expect(pairing.arrive(bridge("b3", 3, "other", "s"))).toEqual({ _tag: "Paired", peer: "k0" })
    expect(pairing.arrive(broker("k1", 4))).toEqual({ _tag: "Paired", peer: "b1" })
    expect(pairing.arrive(broker("k2", 5))).toEqual({ _tag: "Paired", peer: "b2" })
    expect(pairing.arrive(broker("k3", 6))._tag).toBe("Waiting")
    expect(pairing.size).toBe(1)
  })

  it("never pairs a waiter that left or whose wait is over", () => {
    const pairing = new Pairing<string>(wide)
    pairing.arrive(bridge("gone", 0))
    pairing.arrive(bridge("late", 1, "h", "s", 10))
    pairing.arrive(bridge("kept", 2))
    expect(pairing.leave("gone")).toBe(true)
    expect(pairing.arrive(broker("k", 10))).toEqual({ _tag: "Paired", peer: "kept" })
    expect(pairing.expireDue(10)).toEqual(["late"])
    expect(pairing.leave("late")).toBe(false)
    expect(pairing.expire("kept")).toBe(false)
  })

  it("reports an expired waiter once, whichever call finds it", () => {
    const pairing = new Pairing<string>(wide)
    pairing.arrive(bridge("a", 0, "h", "s", 5))
    pairing.arrive(broker("x", 6, "other"))
    expect(pairing.expire("a")).toBe(true)
    expect(pairing.expire("a")).toBe(false)
    expect(pairing.expireDue(100)).toEqual([])
  })

  it("lets a zero max wait pair only with a client already waiting", () => {
    const pairing = new Pairing<string>(wide)
    expect(pairing.arrive(broker("k", 0, "h", "s", 0))).toEqual({ _tag: "Expired" })
    pairing.arrive(bridge("b", 1))
    expect(pairing.arrive(broker("k", 2, "h", "s", 2))).toEqual({ _tag: "Paired", peer: "b" })
  })

  it("refuses a waiter over each limit, and pairs regardless of limits", () => {
    const pairing = new Pairing<string>({ perHash: 2, perSource: 2, total: 3 })
    pairing.arrive(bridge("a", 0, "h1", "s1"))
    pairing.arrive(bridge("b", 0, "h1", "s2"))
    expect(pairing.arrive(bridge("c", 0, "h1", "s3"))).toEqual({ _tag: "Refused", reason: "capacity", limit: "hash" })
    pairing.arrive(bridge("d", 0, "h2", "s1"))
    expect(pairing.arrive(bridge("e", 0, "h3", "s1"))).toMatchObject({ limit: "source" })
    expect(pairing.arrive(bridge("f", 0, "h3", "s3"))).toMatchObject({ limit: "total" })
    expect(pairing.arrive(broker("g", 0, "h1", "s9"))).toEqual({ _tag: "Paired", peer: "a" })
    expect(pairing.arrive(bridge("f", 0, "h3", "s3"))._tag).toBe("Waiting")
  })

  it("refuses an id it already holds", () => {
    const pairing = new Pairing<string>(wide)
    pairing.arrive(bridge("a", 0))
    expect(pairing.arrive(bridge("a", 1, "other"))).toEqual({ _tag: "Duplicate" })
  })

  it("tells when the next deadline is due and treats a time going backwards as the last one seen", () => {
    const pairing = new Pairing<string>(wide)
    pairing.arrive(bridge("a", 100, "h", "s", 150))
    pairing.arrive(bridge("b", 50, "h", "s", 120))
    expect(pairing.now).toBe(100)
    expect(pairing.nextDeadline()).toBe(120)
    expect(pairing.expireDue(130)).toEqual(["b"])
    expect(pairing.nextDeadline()).toBe(150)
  })

  it("keeps its deadline heap bounded under churn", () => {
    const pairing = new Pairing<number>({ perHash: 10, perSource: 10_000, total: 10_000 })
    for (let i = 0; i < 20_000; i++) {
      pairing.arrive({ id: i, role: i % 2 === 0 ? 1 : 2, hash: "h", source: "s", at: i, expiresAt: i + 1e9 })
    }
    expect(pairing.size).toBe(0)
    expect((pairing as unknown as { heap: Array<unknown> }).heap.length).toBeLessThanOrEqual(64)
  })
})

// ---- the property: the machine against a plain reference model ------------------------------------------------

interface ModelWaiter {
  readonly id: number
  readonly role: Role
  readonly hash: string
  readonly source: string
  readonly expiresAt: number
  readonly seq: number
}

/** The rules written as plainly as possible: arrays, scans, sorting. */
class Model {
  readonly limits: PairingLimits
  waiting: Array<ModelWaiter> = []
  overdue: Array<ModelWaiter> = []
  now = -Infinity
  seq = 0

  constructor(limits: PairingLimits) {
    this.limits = limits
  }

  advance(at: number): void {
    this.now = Math.max(this.now, at)
    const due = this.waiting.filter((w) => w.expiresAt <= this.now)
    due.sort((a, b) => a.expiresAt - b.expiresAt || a.seq - b.seq)
    this.waiting = this.waiting.filter((w) => w.expiresAt > this.now)
    this.overdue.push(...due)
  }

  arrive(id: number, role: Role, hash: string, source: string, at: number, expiresAt: number): ArriveOutcome<number> {
    this.advance(at)
    if ([...this.waiting, ...this.overdue].some((w) => w.id === id)) return { _tag: "Duplicate" }
    const peer = this.waiting.find((w) => w.role !== role && w.hash === hash)
    if (peer !== undefined) {
      this.waiting = this.waiting.filter((w) => w !== peer)
      return { _tag: "Paired", peer: peer.id }
    }
    if (expiresAt <= this.now) return { _tag: "Expired" }
    let limit: Limit | undefined
    if (this.waiting.filter((w) => w.hash === hash).length >= this.limits.perHash) limit = "hash"
    else if (this.waiting.filter((w) => w.source === source).length >= this.limits.perSource) limit = "source"
    else if (this.waiting.length >= this.limits.total) limit = "total"
    if (limit !== undefined) return { _tag: "Refused", reason: "capacity", limit }
    this.waiting.push({ id, role, hash, source, expiresAt, seq: this.seq++ })
    return { _tag: "Waiting" }
  }

  leave(id: number): boolean {
    if (this.overdue.some((w) => w.id === id)) {
      this.overdue = this.overdue.filter((w) => w.id !== id)
      return false
    }
    const before = this.waiting.length
    this.waiting = this.waiting.filter((w) => w.id !== id)
    return this.waiting.length < before
  }

  expire(id: number): boolean {
    const before = this.waiting.length + this.overdue.length
    this.waiting = this.waiting.filter((w) => w.id !== id)
    this.overdue = this.overdue.filter((w) => w.id !== id)
    return this.waiting.length + this.overdue.length < before
  }

  expireDue(now: number): Array<number> {
    this.advance(now)
    return this.overdue.splice(0).map((w) => w.id)
  }
}

type Operation =
  | {
    readonly _tag: "arrive"
    readonly role: Role
    readonly hash: string
    readonly source: string
    readonly step: number
    readonly wait: number
    readonly reuse: number | undefined
  }
  | { readonly _tag: "leave"; readonly pick: number }
  | { readonly _tag: "expire"; readonly pick: number }
  | { readonly _tag: "expireDue"; readonly step: number }

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      _tag: fc.constant("arrive" as const),
      role: fc.constantFrom<Role>(1, 2),
      hash: fc.constantFrom("h1", "h2", "h3"),
      source: fc.constantFrom("s1", "s2", "s3"),
      step: fc.integer({ min: -5, max: 20 }),
      wait: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 }), fc.constant(Infinity)),
      // Now and then an id already used, to check that a duplicate changes nothing.
      reuse: fc.option(fc.nat(), { nil: undefined, freq: 20 })
    })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("leave" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("expire" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("expireDue" as const), step: fc.integer({ min: 0, max: 30 }) })
  }
)

const limit = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(Infinity))

type Status = "waiting" | "paired" | "left" | "expired" | "refused"

interface Client {
  readonly role: Role
  readonly hash: string
  readonly arrivedAt: number
  readonly expiresAt: number
  readonly seq: number
  status: Status
}

describe("Pairing properties", () => {
  it.prop(
    "any interleaving of arrivals, departures and expiries follows the pairing rules",
    [fc.record({ perHash: limit, perSource: limit, total: limit }), fc.array(operation, { maxLength: 120 })],
    ([limits, operations]) => {
      const pairing = new Pairing<number>(limits)
      const model = new Model(limits)
      const clients = new Map<number, Client>()
      let clock = 0
      let nextId = 0
      let arrivals = 0
      const pick = (n: number): number => nextId === 0 ? 0 : n % nextId

      for (const op of operations) {
        switch (op._tag) {
          case "arrive": {
            clock = Math.max(0, clock + op.step)
            const id = op.reuse !== undefined && nextId > 0 ? pick(op.reuse) : nextId++
            const expiresAt = clock + op.wait
            const outcome = pairing.arrive({
              id,
              role: op.role,
              hash: op.hash,
              source: op.source,
              at: clock,
              expiresAt
            })
            expect(outcome).toEqual(model.arrive(id, op.role, op.hash, op.source, clock, expiresAt))
            const now = pairing.now
            if (outcome._tag === "Duplicate") {
              expect(clients.has(id)).toBe(true)
              break
            }
            if (clients.has(id)) {
              // A reused id whose first client is gone counts as a new client; it no longer refers to the old one.
              expect(clients.get(id)!.status).not.toBe("waiting")
            }
            const client: Client = {
              role: op.role,
              hash: op.hash,
              arrivedAt: now,
              expiresAt,
              seq: arrivals++,
              status: "waiting"
            }
            clients.set(id, client)
            if (outcome._tag === "Paired") {
              const peer = clients.get(outcome.peer)!
              // Only the other role with the same hash, only a client still waiting and within its wait.
              expect(peer.role).not.toBe(op.role)
              expect(peer.hash).toBe(op.hash)
              expect(peer.status).toBe("waiting")
              expect(peer.expiresAt).toBeGreaterThan(now)
              // The longest waiter of that hash and role goes first.
              for (const [otherId, other] of clients) {
                if (otherId === outcome.peer || other.status !== "waiting" || other.expiresAt <= now) continue
                if (other.role === peer.role && other.hash === peer.hash) {
                  expect(other.seq).toBeGreaterThan(peer.seq)
                }
              }
              peer.status = "paired"
              client.status = "paired"
            } else if (outcome._tag === "Expired") {
              client.status = "expired"
            } else if (outcome._tag === "Refused") {
              client.status = "refused"
            }
            break
          }
          case "leave": {
            const id = pick(op.pick)
            expect(pairing.leave(id)).toBe(model.leave(id))
            const client = clients.get(id)
            if (client?.status === "waiting") client.status = "left"
            break
          }
          case "expire": {
            const id = pick(op.pick)
            const expired = pairing.expire(id)
            expect(expired).toBe(model.expire(id))
            const client = clients.get(id)
            expect(expired).toBe(client?.status === "waiting")
            if (client?.status === "waiting") client.status = "expired"
            break
          }
          case "expireDue": {
            clock += op.step
            const ids = pairing.expireDue(clock)
            expect(ids).toEqual(model.expireDue(clock))
            for (const id of ids) {
              const client = clients.get(id)!
              expect(client.status).toBe("waiting")
              expect(client.expiresAt).toBeLessThanOrEqual(clock)
              client.status = "expired"
            }
            break
          }
        }
        // Limits hold after every step.
        expect(pairing.size).toBeLessThanOrEqual(limits.total)
        for (const hash of ["h1", "h2", "h3"]) expect(pairing.waitingFor(hash)).toBeLessThanOrEqual(limits.perHash)
        for (const source of ["s1", "s2", "s3"]) {
          expect(pairing.waitingFrom(source)).toBeLessThanOrEqual(limits.perSource)
        }
      }

      // Nothing lost: every client still marked waiting is either waiting in the machine or reported as expired now.
      const overdue = new Set(pairing.expireDue(clock))
      const stillWaiting = [...clients].filter(([, client]) => client.status === "waiting")
      for (const [id] of stillWaiting) expect(pairing.isWaiting(id) || overdue.has(id)).toBe(true)
      expect(pairing.size + overdue.size).toBe(stillWaiting.length)
    },
    { fastCheck: { numRuns: 400 } }
  )
})
