/**
 * Vault's duration fields: a number of seconds, a numeric string, or Go duration text such as "1h30m".
 */

const units: Record<string, number> = { ns: 1e-9, us: 1e-6, "µs": 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 }

/** Seconds from a duration field; `undefined` when absent, an error message when it does not parse. */
export const parseDuration = (value: unknown): number | undefined | { readonly error: string } => {
  if (value === undefined || value === null || value === "") return undefined
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Math.trunc(value) : invalid(value)
  if (typeof value !== "string") return invalid(value)
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number.parseInt(text, 10)
  const pattern = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy
  let total = 0
  let consumed = 0
  for (const match of text.matchAll(pattern)) {
    total += Number.parseFloat(match[1]!) * units[match[2]!]!
    consumed += match[0].length
  }
  return consumed === text.length && consumed > 0 ? Math.trunc(total) : invalid(value)
}

const invalid = (value: unknown) => ({ error: `time: invalid duration ${JSON.stringify(value)}` })

/** Whether `parseDuration` failed. */
export const isDurationError = (
  parsed: number | undefined | { readonly error: string }
): parsed is { readonly error: string } => typeof parsed === "object"

/** Go's duration text for whole seconds, as Vault prints durations ("0s", "1h0m0s"). */
export const formatDuration = (seconds: number): string => {
  if (seconds === 0) return "0s"
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}
