/** Reading the CA certificate files a TLS step names (`--ca`). @module */

import { UsageError } from "../syntax/usage.ts";

/**
 * Reads a PEM certificate file for `--ca`. Throws UsageError for a file that cannot be read
 * or holds no certificate.
 *
 * @example
 * ```ts ignore
 * const pem = await readPem("/etc/ssl/certs/my-ca.pem");
 * ```
 */
export async function readPem(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(
      `Cannot read CA file "${path}": ${error instanceof Error ? error.message : error}`,
    );
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new UsageError(`Cannot use CA file "${path}": no PEM certificate in it`);
  }
  return text;
}
