/**
 * The frames the beacon writes most often, built in place (random bytes filled straight into the frame) so that each
 * is one allocation and one socket write.
 */
import { HEADER_SIZE } from "@cloudtaser/protocol/Frame"

/** Frame header: type (1 byte) and payload length (4 bytes). */
export const HEADER_BYTES = HEADER_SIZE

/** Makes a frame of `type` with room for `payloadBytes` of payload after its header. */
export const allocFrame = (type: number, payloadBytes: number): Buffer => {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes)
  frame[0] = type
  frame.writeUInt32BE(payloadBytes, 1)
  return frame
}
