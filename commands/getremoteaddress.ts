/** `wsk getremoteaddress`. @module */

import type { CliContext } from "../cli/command.ts";
import { addressQueryCommand } from "./getlocaladdress.ts";

/** Builds the `getremoteaddress` command. */
export function getremoteaddressCommand(ctx: CliContext) {
  return addressQueryCommand(ctx, "remote");
}
