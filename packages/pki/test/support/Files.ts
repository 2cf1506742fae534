/**
 * Test support: a scoped temporary directory and the machine's openssl run as a child process.
 */
import { Data, Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export class OpensslFailed extends Data.TaggedError("OpensslFailed")<{
  readonly args: ReadonlyArray<string>
  readonly code: number | string | undefined
  readonly stdout: string
  readonly stderr: string
}> {}

export interface OpensslResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** A temporary directory removed when the scope closes, with helpers to write and read files in it. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "cloudtaser-pki-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => ({
  dir,
  path: (name: string) => join(dir, name),
  write: (name: string, content: string | Uint8Array) => {
    writeFileSync(join(dir, name), content)
    return join(dir, name)
  },
  read: (name: string) => readFileSync(join(dir, name))
})))

/** Runs openssl and returns its exit code and output, whatever the code. */
export const opensslResult = (args: ReadonlyArray<string>) =>
  Effect.async<OpensslResult>((resume) => {
    const child = execFile("openssl", [...args], { encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })

/** Runs openssl and fails unless it exits with 0. */
export const openssl = (args: ReadonlyArray<string>) =>
  opensslResult(args).pipe(
    Effect.filterOrFail(
      (result) => result.code === 0,
      (result) => new OpensslFailed({ args, ...result })
    )
  )
