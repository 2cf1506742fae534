/**
 * The frames the beacon writes most often, built in place (random bytes filled straight into the frame) so that each
 * is one allocation and one socket write.
 */
import { HEADER_SIZE } from "@cloudtaser/protocol/Frame"
import { randomFillSync } from "node:crypto"

/** Frame header: type (1 byte) and payload length (4 bytes). */
export const HEADER_BYTES = HEADER_SIZE

/** Makes a frame of `type` with room for `payloadBytes` of payload after its header. */
export const allocFrame = (type: number, payloadBytes: number): Buffer => {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes)
  frame[0] = type
  frame.writeUInt32BE(payloadBytes, 1)
  return frame
}

// Nonces and session ids are drawn from a pool filled a few KiB at a time: one call into the CSPRNG per ~80
// connections instead of two per connection.
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let poolOffset = 0

/** Writes `length` random bytes (at most 4096) into `target` at `offset`. */
export const fillRandom = (target: Buffer, offset: number, length: number): void => {
  if (poolOffset + length > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES))
    poolOffset = 0
  }
  pool.copy(target, offset, poolOffset, poolOffset + length)
  poolOffset += length
}
