/**
 * Whether a host is a loopback name or address: where the HTTP API may
 * listen on its own (it has no authentication).
 */
import { Result } from "effect"
import * as NetAddress from "effect/net/NetAddress"

/** `localhost`, or an address in 127.0.0.0/8 or `::1` (bracketed or not). */
export const isLoopbackHost = (host: string): boolean => {
  if (host.toLowerCase() === "localhost") return true
  const ip = NetAddress.ipFromString(host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host)
  return Result.isSuccess(ip) && NetAddress.isLoopback(ip.success)
}
