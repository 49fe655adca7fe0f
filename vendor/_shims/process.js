// The part of `node:process` commander touches, on Deno's own APIs. Importing the real
// `node:process` starts Deno's Node compatibility layer, about 10 ms of every wsk start.
// CommonJS, as `require("node:process")` returns the process object itself.

const encoder = new TextEncoder();

function stream(file) {
  return {
    write(text) {
      const bytes = encoder.encode(String(text));
      for (let offset = 0; offset < bytes.length;) offset += file.writeSync(bytes.subarray(offset));
      return true;
    },
    get isTTY() {
      return file.isTerminal();
    },
    get columns() {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return undefined;
      }
    },
    hasColors() {
      return file.isTerminal() && !Deno.noColor;
    },
  };
}

/** Environment variables commander may read, answered only where env access is granted. */
const env = new Proxy({}, {
  get(_target, name) {
    if (typeof name !== "string") return undefined;
    const state = Deno.permissions.querySync({ name: "env", variable: name }).state;
    return state === "granted" ? Deno.env.get(name) : undefined;
  },
  has(_target, name) {
    return env[name] !== undefined;
  },
});

module.exports = {
  get argv() {
    return [Deno.execPath(), Deno.mainModule, ...Deno.args];
  },
  env,
  execArgv: [],
  get execPath() {
    return Deno.execPath();
  },
  versions: {},
  platform: Deno.build.os === "windows" ? "win32" : Deno.build.os,
  get exitCode() {
    return Deno.exitCode;
  },
  set exitCode(code) {
    Deno.exitCode = Number(code ?? 0);
  },
  exit(code) {
    Deno.exit(code ?? Deno.exitCode);
  },
  on() {},
  stdout: stream(Deno.stdout),
  stderr: stream(Deno.stderr),
};
