/**
 * The start-up floor of the benchmark suite: `deno run bench/empty.ts` does nothing, so its wall
 * time is Deno's own start-up and exit on this machine.
 *
 * @module
 */
