/** The error codes that an ERROR frame carries, by name and by number, as fixed by protocol version 1. */

/**
 * Error codes by name. A plain object rather than an enum so that the sources run under type stripping.
 */
export const ErrorCode = {
  bad_frame: 1,
  unsupported_version: 2,
  hello_timeout: 3,
  proof_invalid: 4,
  hash_mismatch: 5,
  cert_invalid: 6,
  wait_expired: 7,
  capacity: 8,
  shutting_down: 9,
  frame_too_large: 10,
  internal: 11
} as const

/** The name of an error code, e.g. `"bad_frame"`. */
export type ErrorCodeName = keyof typeof ErrorCode

/** The number of an error code, e.g. `1`. */
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName]

const namesByValue: ReadonlyArray<ErrorCodeName | undefined> = (() => {
  const names: Array<ErrorCodeName | undefined> = []
  for (const name of Object.keys(ErrorCode) as Array<ErrorCodeName>) {
    names[ErrorCode[name]] = name
  }
  return names
})()

/**
 * The name of an error code number, or `undefined` for a number that version 1 does not define
 * (an ERROR frame from a newer peer may carry one).
 */
export const errorCodeName = (code: number): ErrorCodeName | undefined =>
  Number.isInteger(code) && code >= 0 ? namesByValue[code] : undefined

/** Whether a number is an error code of version 1. */
export const isErrorCode = (code: number): code is ErrorCodeValue => errorCodeName(code) !== undefined
