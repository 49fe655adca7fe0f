// The pump's mapping of a failed local write (a --output file, standard output) to a status.

import assert from "node:assert/strict";
import { writeFailure } from "../../engine/pump.ts";
import {
  STATUS_DISK_FULL,
  STATUS_IO_DEVICE_ERROR,
  STATUS_PIPE_BROKEN,
  STATUS_UNSUCCESSFUL,
} from "../../provider/mod.ts";

/** An error shaped as Deno throws it for a failed write: a message with the errno, a code. */
function hostError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

Deno.test("writeFailure() maps ENOSPC, EPIPE and EIO to their statuses and anything else to STATUS_UNSUCCESSFUL, keeping the host's message", () => {
  const cases: [unknown, number][] = [
    [hostError("No space left on device (os error 28)", "ENOSPC"), STATUS_DISK_FULL],
    [new Error("No space left on device (os error 28)"), STATUS_DISK_FULL],
    [new Deno.errors.BrokenPipe("Broken pipe (os error 32)"), STATUS_PIPE_BROKEN],
    [hostError("Broken pipe (os error 32)", "EPIPE"), STATUS_PIPE_BROKEN],
    [hostError("Input/output error (os error 5)", "EIO"), STATUS_IO_DEVICE_ERROR],
    [hostError("Permission denied (os error 13)", "EACCES"), STATUS_UNSUCCESSFUL],
  ];
  for (const [error, status] of cases) {
    const failure = writeFailure(error);
    assert.equal(failure.status, status, String(error));
    assert.equal(failure.information, 0);
    assert.equal(failure.message, (error as Error).message);
    assert.equal(failure.cause, error);
  }
});
