/**
 * The `HOST:PORT` form every listening flag of the command line takes (`--addr`, `--ops-addr`, `--listen`).
 */
import { Option } from "effect"
import { isIP } from "node:net"

/** A host and port to listen on. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/**
 * Parses `host:port`, `[ipv6]:port` or `:port` (every IPv4 interface). Port 0 asks the system for a free port.
 */
export const parseAddress = (text: string): Option.Option<ListenAddress> => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return Option.none()
  const port = Number(match[3])
  if (port > 65535) return Option.none()
  const host = match[1] ?? match[2]
  return Option.some({ host: host === "" ? "0.0.0.0" : host, port })
}

/** Formats an address for logs: IPv6 hosts in brackets. */
export const formatAddress = (address: ListenAddress): string =>
  isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
