/**
 * What Linux reports about a running process: CPU time from /proc/<pid>/stat and resident memory from
 * /proc/<pid>/status.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const clockTicksPerSecond = ((): number => {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100
  } catch {
    return 100
  }
})()

/** User plus system CPU seconds the process has used so far. */
export const cpuSeconds = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // The command name in parentheses may hold spaces, so fields are counted from its closing parenthesis:
  // after it come state (field 3), ..., utime (field 14) and stime (field 15).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond
}

/** The process's resident set size in bytes (VmRSS). */
export const rssBytes = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status: the process has exited`)
  return Number(match[1]) * 1024
}

/** The soft limit on open files of the process, as the kernel reports it. */
export const openFileLimit = (pid: number): number | null => {
  const limits = readFileSync(`/proc/${pid}/limits`, "utf8")
  const match = /^Max open files\s+(\d+)/m.exec(limits)
  return match === null ? null : Number(match[1])
}
