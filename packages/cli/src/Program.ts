/**
 * Runs a command tree as a process: JSON logs, one report of each failure, and the exit code that goes with it.
 */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Logger } from "effect"

/**
 * Runs `program` as the process's main effect. Parse errors were printed by `@effect/cli` already, so they only set
 * the exit code; any other failure is printed once, as its message, which says what to do.
 */
export const runMain = <E, A>(program: Effect.Effect<A, E, NodeContext.NodeContext>): void =>
  program.pipe(
    Effect.tapErrorCause((cause) => {
      const failures = Array.from(Cause.failures(cause))
      if (failures.length > 0 && failures.every(ValidationError.isValidationError)) return Effect.void
      if (Cause.isInterruptedOnly(cause)) return Effect.void
      const reported = failures.length > 0 ? failures.map(describe).join("\n") : Cause.pretty(cause)
      return Console.error(`error: ${reported}`)
    }),
    Effect.provide(Logger.json),
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
  )

const describe = (failure: unknown): string =>
  failure instanceof Error ? failure.message : typeof failure === "string" ? failure : String(failure)
