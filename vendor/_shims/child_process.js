// commander spawns a child only for executable subcommands, which wsk does not declare.

export function spawn() {
  throw new Error("wsk declares no executable subcommands");
}

export default { spawn };
