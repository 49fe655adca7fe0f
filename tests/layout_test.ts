// The layout's rules, checked on the real module graph (`deno info --json`): imports run one
// way, from main.ts down to provider/, no module but main.ts imports a command file, and there
// are no circles.

import assert from "node:assert/strict";

/** The folders from top to bottom: a module may import only from its own folder or below. */
const LAYERS = [
  "main.ts",
  "commands",
  "cli",
  "session",
  "steps",
  "engine",
  "report",
  "syntax",
  "provider",
];

const ROOT = new URL("../", import.meta.url);

interface Graph {
  readonly modules: readonly {
    readonly specifier: string;
    readonly dependencies?: readonly {
      readonly specifier: string;
      readonly code?: { readonly specifier?: string };
      readonly type?: { readonly specifier?: string };
    }[];
  }[];
}

/** The graph of the project's own modules: path → the project paths it imports. */
async function projectGraph(): Promise<Map<string, string[]>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT.pathname,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as Graph;
  const local = (specifier: string | undefined) =>
    specifier?.startsWith(ROOT.href) ? specifier.slice(ROOT.href.length) : null;
  const edges = new Map<string, string[]>();
  for (const module of graph.modules) {
    const from = local(module.specifier);
    if (from === null || from.startsWith("vendor/")) continue;
    const to = (module.dependencies ?? [])
      .flatMap((d) => [local(d.code?.specifier), local(d.type?.specifier)])
      .filter((path): path is string => path !== null && !path.startsWith("vendor/"));
    edges.set(from, [...new Set(to)]);
  }
  return edges;
}

/** A module's layer: its top folder, or main.ts itself. */
function layerOf(path: string): number {
  const top = path.includes("/") ? path.slice(0, path.indexOf("/")) : path;
  const index = LAYERS.indexOf(top);
  assert.notEqual(index, -1, `${path} is in no known layer (${LAYERS.join(", ")})`);
  return index;
}

Deno.test("layout: the graph from main.ts reaches every layer and every command file", async () => {
  const graph = await projectGraph();
  for (const layer of LAYERS) {
    assert.ok(
      [...graph.keys()].some((path) => path === layer || path.startsWith(`${layer}/`)),
      `nothing in ${layer} is reachable from main.ts`,
    );
  }
  const commands: string[] = [];
  for await (const entry of Deno.readDir(new URL("../commands/", import.meta.url))) {
    if (entry.name.endsWith(".ts")) commands.push(`commands/${entry.name}`);
  }
  for (const file of commands) assert.ok(graph.has(file), `${file} is not loaded by main.ts`);
});

Deno.test("layout: no module but main.ts imports a command file", async () => {
  const graph = await projectGraph();
  for (const [from, to] of graph) {
    if (from === "main.ts") continue;
    for (const target of to) {
      assert.ok(!target.startsWith("commands/"), `${from} imports the command file ${target}`);
    }
  }
});

Deno.test("layout: imports run one way, from main.ts down to provider/", async () => {
  const graph = await projectGraph();
  for (const [from, to] of graph) {
    for (const target of to) {
      assert.ok(
        layerOf(target) >= layerOf(from),
        `${from} (${LAYERS[layerOf(from)]}) imports ${target}, a layer above it`,
      );
    }
  }
});

Deno.test("layout: there are no import cycles", async () => {
  const graph = await projectGraph();
  const state = new Map<string, "open" | "done">();
  const visit = (path: string, trail: string[]): void => {
    if (state.get(path) === "done") return;
    assert.notEqual(state.get(path), "open", `cycle: ${[...trail, path].join(" -> ")}`);
    state.set(path, "open");
    for (const next of graph.get(path) ?? []) visit(next, [...trail, path]);
    state.set(path, "done");
  };
  for (const path of graph.keys()) visit(path, []);
});
