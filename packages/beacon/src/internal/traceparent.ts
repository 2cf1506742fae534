/**
 * Reads a W3C traceparent (version 00) into the parent span of a beacon session, so that the session joins the
 * client's trace.
 */
import { Tracer } from "effect"

const pattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

const allZero = /^0+$/

/** The span a traceparent names, or undefined when the text is not a valid version 00 traceparent. */
export const parentSpan = (traceparent: string): Tracer.ExternalSpan | undefined => {
  const match = pattern.exec(traceparent)
  if (match === null) return undefined
  const [, traceId, spanId, flags] = match
  if (allZero.test(traceId!) || allZero.test(spanId!)) return undefined
  return Tracer.externalSpan({ traceId: traceId!, spanId: spanId!, sampled: (parseInt(flags!, 16) & 1) === 1 })
}
