/**
 * The CLI's one domain error: wrong user input found after parsing (an unreadable file, a
 * missing option). `main` prints it as `error: <message>` and exits with 2.
 *
 * @module
 */

/** Wrong input from the user; never a network outcome. */
export class UsageError extends Error {
  override name = "UsageError";
}
