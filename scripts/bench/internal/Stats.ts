/**
 * Summaries of measured samples: percentiles by the nearest-rank method, and rounding for the printed figures.
 */

/** The p-th percentile (0 < p <= 100) of the samples by nearest rank; NaN when there are none. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]!
}

/** The median of the samples; NaN when there are none. */
export const median = (samples: ReadonlyArray<number>): number => percentile(samples, 50)

/** Rounds to the given number of decimals, keeping null for figures that could not be measured. */
export const round = (value: number, decimals = 2): number | null => {
  if (!Number.isFinite(value)) return null
  const scale = 10 ** decimals
  return Math.round(value * scale) / scale
}

/** beacon ÷ haproxy, or null when either side is missing. */
export const ratio = (beacon: number | null, haproxy: number | null): number | null =>
  beacon === null || haproxy === null || haproxy === 0 ? null : round(beacon / haproxy, 2)

/** Milliseconds since an arbitrary origin, with sub-microsecond resolution. */
export const nowMs = (): number => performance.now()
