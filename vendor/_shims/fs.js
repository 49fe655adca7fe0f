// The part of `node:fs` commander touches (only to find executable subcommands), on Deno's APIs.

export function existsSync(path) {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

export function realpathSync(path) {
  return Deno.realPathSync(path);
}

export default { existsSync, realpathSync };
