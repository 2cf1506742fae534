/**
 * Child processes and temporary directories held by a scope: whatever way the benchmark ends, its children are
 * stopped and its files removed.
 */
import { Data, Effect } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { setPriority, tmpdir } from "node:os"
import { join } from "node:path"

/** A child process that could not be started, exited early, or never said it was ready. */
export class ChildError extends Data.TaggedError("ChildError")<{
  readonly reason: "spawn_failed" | "exited" | "not_ready"
  readonly name: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.name}: ${this.reason.replace("_", " ")}: ${this.detail}`
  }
}

/** A running child, its output kept line by line. */
export interface Child {
  readonly name: string
  readonly pid: number
  readonly process: ChildProcess
  /** The last lines the child wrote on stdout or stderr, for error reports. */
  readonly tail: () => string
  /** Calls `listener` with every further line; returns a function that stops it. */
  readonly onLine: (listener: (line: string) => void) => () => void
}

const TAIL_LINES = 30
const STOP_GRACE_MS = 3_000

/** Starts `command` with `args`; the scope's end sends SIGTERM, then SIGKILL if it has not exited after 3 s. */
export const spawnChild = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {}
): Effect.Effect<Child, ChildError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Child, ChildError>((resume) => {
      const child = spawn(command, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<string> = []
      const listeners = new Set<(line: string) => void>()
      const collect = (stream: NodeJS.ReadableStream) => {
        let partial = ""
        stream.setEncoding("utf8")
        stream.on("data", (chunk: string) => {
          const parts = (partial + chunk).split("\n")
          partial = parts.pop()!
          for (const line of parts) {
            lines.push(line)
            if (lines.length > TAIL_LINES) lines.shift()
            for (const listener of listeners) listener(line)
          }
        })
      }
      collect(child.stdout)
      collect(child.stderr)
      // Last resort if this process dies without running its finalizers: never leave a child behind.
      const killOnExit = () => child.kill("SIGKILL")
      process.once("exit", killOnExit)
      child.once("exit", () => process.removeListener("exit", killOnExit))
      child.once("error", (error) =>
        resume(Effect.fail(new ChildError({ reason: "spawn_failed", name, detail: error.message }))))
      child.once("spawn", () =>
        resume(Effect.succeed({
          name,
          pid: child.pid!,
          process: child,
          tail: () =>
            lines.join("\n"),
          onLine: (listener) => {
            listeners.add(listener)
            return () => listeners.delete(listener)
          }
        })))
    }),
    (child) => stopChild(child.process)
  )

/**
 * Starts the Node.js program `script` with the benchmark's own Node.js and its options, except any `--cpu-prof`
 * ones (a child that is to be profiled gets its own in `nodeArgs`), then `args`.
 */
export const spawnNodeChild = (
  name: string,
  script: string,
  nodeArgs: ReadonlyArray<string>,
  args: ReadonlyArray<string>
): Effect.Effect<Child, ChildError, Scope.Scope> =>
  spawnChild(name, process.execPath, [
    ...process.execArgv.filter((arg) => arg.startsWith("--cpu-prof") === false),
    ...nodeArgs,
    script,
    ...args
  ])

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

const stopChild = (child: ChildProcess): Effect.Effect<void> =>
  Effect.promise(() =>
    new Promise<void>((resolve) => {
      if (hasExited(child)) return resolve()
      const kill = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS)
      const giveUp = setTimeout(resolve, STOP_GRACE_MS * 2)
      child.once("exit", () => {
        clearTimeout(kill)
        clearTimeout(giveUp)
        resolve()
      })
      child.kill("SIGTERM")
    })
  )

/**
 * Starts one busy loop per core at the lowest priority (nice 19), each ending by itself after `seconds`: it runs only
 * when nothing else wants the core, and keeps idle cores from sleeping, whose wake-up would otherwise dominate a
 * round trip through another process.
 */
export const keepCoresAwake = (cores: number, seconds: number): Effect.Effect<void, ChildError, Scope.Scope> =>
  Effect.forEach(Array.from({ length: cores }, (_, i) => i), (i) =>
    Effect.gen(function*() {
      const child = yield* spawnChild(`busy loop ${i}`, process.execPath, [
        "-e",
        `console.log("busy"); const end = Date.now() + ${seconds * 1000}; while (Date.now() < end) {}`
      ])
      yield* Effect.sync(() => setPriority(child.pid, 19))
      // Node.js takes a moment to start; the loop must run before the first round trip.
      yield* waitForLine(child, (line) => line === "busy" ? true : undefined, 10_000)
    }), { discard: true })

/** Waits until `parse` returns a value for a line of the child's output; fails if the child exits or time runs out. */
export const waitForLine = <A>(
  child: Child,
  parse: (line: string) => A | undefined,
  timeoutMs: number
): Effect.Effect<A, ChildError> =>
  Effect.async<A, ChildError>((resume) => {
    const finish = (effect: Effect.Effect<A, ChildError>) => {
      stop()
      clearTimeout(timer)
      child.process.removeListener("exit", onExit)
      resume(effect)
    }
    const stop = child.onLine((line) => {
      const value = parse(line)
      if (value !== undefined) finish(Effect.succeed(value))
    })
    const onExit = (code: number | null, signal: string | null) =>
      finish(Effect.fail(
        new ChildError({
          reason: "exited",
          name: child.name,
          detail: `exit code ${code}, signal ${signal}; last output:\n${child.tail()}`
        })
      ))
    child.process.once("exit", onExit)
    const timer = setTimeout(() =>
      finish(Effect.fail(
        new ChildError({
          reason: "not_ready",
          name: child.name,
          detail: `not ready after ${timeoutMs} ms; last output:\n${child.tail()}`
        })
      )), timeoutMs)
    if (hasExited(child.process)) onExit(child.process.exitCode, child.process.signalCode)
  })

/** A fresh directory under the system's temporary directory, removed with everything in it when the scope ends. */
export const scopedTempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), prefix))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )
