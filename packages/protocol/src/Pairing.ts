/**
 * The beacon's pairing rules as a deterministic state machine: a client of one role pairs with the longest waiter of
 * the other role for the same info hash, or waits within the capacity limits, until it leaves or its wait is over.
 */
import type { Role } from "./Frame.ts"

/** How many clients may wait: for one info hash, from one source address, and in all. */
export interface PairingLimits {
  readonly perHash: number
  readonly perSource: number
  readonly total: number
}

/** The limit that refused a client. */
export type Limit = "hash" | "source" | "total"

/** A client whose HELLO was accepted and that now wants a peer. */
export interface Arrival<Id> {
  /** Any value usable as a Map key (a connection object, a number); unique among the clients the machine holds. */
  readonly id: Id
  readonly role: Role
  /** The info hash, as a key (its hex, say). */
  readonly hash: string
  /** The source address, as a key. */
  readonly source: string
  /** The time of arrival, in milliseconds on the caller's clock. */
  readonly at: number
  /** When the client's wait is over, on the same clock; omitted or `Infinity` for no deadline. */
  readonly expiresAt?: number | undefined
}

/** Paired with `peer`, which leaves the machine: both get PAIRED. */
export interface Paired<Id> {
  readonly _tag: "Paired"
  readonly peer: Id
}

/** No peer yet: the client now waits. */
export interface Waiting {
  readonly _tag: "Waiting"
}

/** No peer was waiting and the client's wait was already over (a max wait of 0): `wait_expired`. */
export interface Expired {
  readonly _tag: "Expired"
}

/** No peer was waiting and one more waiter would exceed `limit`: `capacity`. */
export interface Refused {
  readonly _tag: "Refused"
  readonly reason: "capacity"
  readonly limit: Limit
}

/** The id is already held by the machine; the arrival changed nothing. */
export interface Duplicate {
  readonly _tag: "Duplicate"
}

/** What `arrive` decides. */
export type ArriveOutcome<Id> = Paired<Id> | Waiting | Expired | Refused | Duplicate

interface Entry<Id> {
  readonly id: Id
  readonly role: Role
  readonly hash: string
  readonly source: string
  readonly expiresAt: number
  readonly seq: number
}

const waiting: Waiting = { _tag: "Waiting" }
const expired: Expired = { _tag: "Expired" }
const duplicate: Duplicate = { _tag: "Duplicate" }
const refusedBy: { readonly [L in Limit]: Refused } = {
  hash: { _tag: "Refused", reason: "capacity", limit: "hash" },
  source: { _tag: "Refused", reason: "capacity", limit: "source" },
  total: { _tag: "Refused", reason: "capacity", limit: "total" }
}

const before = <Id>(a: Entry<Id>, b: Entry<Id>): boolean =>
  a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.seq < b.seq)

/**
 * The waiting clients and the rules that pair them. Deterministic, with no clock of its own: every time comes from
 * the caller, and a time earlier than one already seen counts as that one. Arrival, departure and pairing cost
 * amortised O(1) (Maps and Sets in insertion order); deadlines sit in a binary heap, O(log n) per waiter with one.
 *
 * A waiter whose deadline has passed is never paired: each `arrive` first sets such waiters aside as expired, and
 * `expireDue` reports them. Ids must be unique among the clients held; after `Paired`, `leave` or an expiry the
 * machine forgets the id.
 */
export class Pairing<Id> {
  readonly limits: PairingLimits
  private readonly waiters = new Map<Id, Entry<Id>>()
  // Queues by info hash for each role; a Set's first element is the longest waiter.
  private readonly bridges = new Map<string, Set<Entry<Id>>>()
  private readonly brokers = new Map<string, Set<Entry<Id>>>()
  private readonly perSource = new Map<string, number>()
  // Waiters whose deadline passed, set aside and not yet reported by `expireDue`, `expire` or `leave`.
  private readonly overdue = new Map<Id, Entry<Id>>()
  // A min-heap of deadlines. Entries of waiters that have since left stay until they surface or the heap is rebuilt.
  private heap: Array<Entry<Id>> = []
  private seq = 0
  private clock = -Infinity

  constructor(limits: PairingLimits) {
    this.limits = limits
  }

  /** The number of clients waiting. */
  get size(): number {
    return this.waiters.size
  }

  /** The latest time the machine has seen. */
  get now(): number {
    return this.clock
  }

  /** Whether `id` is waiting. */
  isWaiting(id: Id): boolean {
    return this.waiters.has(id)
  }

  /** The number of clients waiting with this info hash. */
  waitingFor(hash: string): number {
    return (this.bridges.get(hash)?.size ?? 0) + (this.brokers.get(hash)?.size ?? 0)
  }

  /** The number of clients waiting from this source address. */
  waitingFrom(source: string): number {
    return this.perSource.get(source) ?? 0
  }

  /** Pairs a new client with the longest waiter of the other role and the same hash, or queues or refuses it. */
  arrive(arrival: Arrival<Id>): ArriveOutcome<Id> {
    const now = this.advance(arrival.at)
    if (this.waiters.has(arrival.id) || this.overdue.has(arrival.id)) return duplicate
    const others = (arrival.role === 1 ? this.brokers : this.bridges).get(arrival.hash)
    if (others !== undefined) {
      const peer: Entry<Id> = others.values().next().value!
      this.remove(peer)
      return { _tag: "Paired", peer: peer.id }
    }
    const expiresAt = arrival.expiresAt === undefined || Number.isNaN(arrival.expiresAt) ? Infinity : arrival.expiresAt
    if (expiresAt <= now) return expired
    const limit = this.exceeded(arrival)
    if (limit !== undefined) return refusedBy[limit]
    this.insert(arrival, expiresAt)
    return waiting
  }

  /** Removes a client that closed or was closed. Returns whether it was waiting. */
  leave(id: Id): boolean {
    if (this.overdue.delete(id)) return false
    const entry = this.waiters.get(id)
    if (entry === undefined) return false
    this.remove(entry)
    return true
  }

  /**
   * Removes a client because its wait is over by the caller's own reckoning. Returns whether it was waiting or had
   * expired unreported, that is whether it is owed `wait_expired`; false when it was paired or left first.
   */
  expire(id: Id): boolean {
    if (this.overdue.delete(id)) return true
    const entry = this.waiters.get(id)
    if (entry === undefined) return false
    this.remove(entry)
    return true
  }

  /** Removes and returns every client whose deadline is at or before `now`, earliest deadline first. */
  expireDue(now: number): Array<Id> {
    this.advance(now)
    const ids = Array.from(this.overdue.keys())
    this.overdue.clear()
    return ids
  }

  /** The earliest deadline among the waiting clients, if any has one: when to call `expireDue` next. */
  nextDeadline(): number | undefined {
    this.dropStale()
    return this.heap.length === 0 ? undefined : this.heap[0]!.expiresAt
  }

  private advance(at: number): number {
    if (at > this.clock) this.clock = at
    const now = this.clock
    for (;;) {
      this.dropStale()
      const top = this.heap[0]
      if (top === undefined || top.expiresAt > now) return now
      this.pop()
      this.remove(top)
      this.overdue.set(top.id, top)
    }
  }

  private exceeded(arrival: Arrival<Id>): Limit | undefined {
    const queue = (arrival.role === 1 ? this.bridges : this.brokers).get(arrival.hash)
    if ((queue?.size ?? 0) >= this.limits.perHash) return "hash"
    if (this.waitingFrom(arrival.source) >= this.limits.perSource) return "source"
    if (this.waiters.size >= this.limits.total) return "total"
    return undefined
  }

  private insert(arrival: Arrival<Id>, expiresAt: number): void {
    const entry: Entry<Id> = {
      id: arrival.id,
      role: arrival.role,
      hash: arrival.hash,
      source: arrival.source,
      expiresAt,
      seq: this.seq++
    }
    this.waiters.set(entry.id, entry)
    const queues = entry.role === 1 ? this.bridges : this.brokers
    const queue = queues.get(entry.hash)
    if (queue === undefined) queues.set(entry.hash, new Set([entry]))
    else queue.add(entry)
    this.perSource.set(entry.source, this.waitingFrom(entry.source) + 1)
    if (expiresAt !== Infinity) this.push(entry)
  }

  private remove(entry: Entry<Id>): void {
    this.waiters.delete(entry.id)
    const queues = entry.role === 1 ? this.bridges : this.brokers
    const queue = queues.get(entry.hash)!
    queue.delete(entry)
    if (queue.size === 0) queues.delete(entry.hash)
    const count = this.waitingFrom(entry.source) - 1
    if (count === 0) this.perSource.delete(entry.source)
    else this.perSource.set(entry.source, count)
    // Rebuild the heap once departed waiters make up most of it, so that churn cannot grow it without bound.
    if (this.heap.length > 64 && this.heap.length > 2 * this.waiters.size) this.rebuildHeap()
  }

  private isLive(entry: Entry<Id>): boolean {
    return this.waiters.get(entry.id) === entry
  }

  private dropStale(): void {
    while (this.heap.length > 0 && !this.isLive(this.heap[0]!)) this.pop()
  }

  private rebuildHeap(): void {
    const live = this.heap.filter((entry) => this.isLive(entry))
    this.heap = live
    for (let i = (live.length >> 1) - 1; i >= 0; i--) this.siftDown(i)
  }

  private push(entry: Entry<Id>): void {
    const heap = this.heap
    let i = heap.push(entry) - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(entry, heap[parent]!)) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = entry
  }

  private pop(): void {
    const heap = this.heap
    const last = heap.pop()!
    if (heap.length === 0) return
    heap[0] = last
    this.siftDown(0)
  }

  private siftDown(start: number): void {
    const heap = this.heap
    const entry = heap[start]!
    let i = start
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left
      if (!before(heap[child]!, entry)) break
      heap[i] = heap[child]!
      i = child
    }
    heap[i] = entry
  }
}

/** A new, empty pairing machine with these limits. */
export const make = <Id>(limits: PairingLimits): Pairing<Id> => new Pairing<Id>(limits)
