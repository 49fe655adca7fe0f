/**
 * Internal: asks the kernel whether a local address can be bound, by binding a throw-away
 * listener there. This is how the model learns bind conflicts and kernel-chosen ports, because
 * the host cannot hold a bound, unconnected TCP socket.
 *
 * @module
 */

import type { SockAddr } from "./address.ts";
import type { WskCompletion } from "./types.ts";
import { hostFailure } from "./_irp.ts";

/** Binds and releases `address`; returns the port the kernel gave, or the failed completion. */
export function probeBind(address: SockAddr): number | WskCompletion {
  try {
    const listener = Deno.listen({ hostname: address.address, port: address.port });
    const port = listener.addr.port;
    listener.close();
    return port;
  } catch (error) {
    return hostFailure(error, `Bind ${address.address} port ${address.port}`);
  }
}
