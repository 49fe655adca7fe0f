/** `starttls`: a TLS handshake on a socket that is already connected (scripts, handles). @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import { TLS_CLIENT_OPTIONS, tlsOf, type VerbDecl } from "../steps/verb.ts";

/** The `starttls` verb. */
export const starttls: VerbDecl = {
  name: "starttls",
  summary: "Upgrade a connected socket to TLS in place (SMTP/IMAP STARTTLS): later sends and " +
    "receives carry plaintext through TLS. A script step, or a command on a session handle.",
  calls: "TlsHandshake",
  examples: [
    "wsk starttls @1 --ca ca.pem --servername mail.example",
  ],
  target: "none",
  options: TLS_CLIENT_OPTIONS,
  make({ options, entry }) {
    if (entry === "cli") {
      throw new InvalidArgumentError(
        "starttls works on a connected socket: a session handle (wsk starttls @N) or a " +
          "wsk run step; to connect with TLS, use --tls",
      );
    }
    return { verb: "starttls", tls: tlsOf({ ...options, tls: true }).tls! };
  },
  handle: true,
  script: true,
};

/** Builds the `starttls` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, starttls);
