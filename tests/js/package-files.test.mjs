// What `npm pack` puts in the package, read from `npm pack --dry-run --json` (no build, no network):
// every file the "exports" map and "bin" point at, the .wasm and the type declarations, the license
// texts package.json's "license" names, and every file the README links to (so that its links work
// from node_modules and on the registry's page); nothing of the tests, benchmarks' scripts or builds.
// And the packed tarball itself, installed offline into a new project: every entry point loads from it
// (the frameworks' entries with their peers linked in) and a turn runs, as a user's first script would.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8"));
const [packed] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" }));
const files = new Set(packed.files.map((file) => file.path));

/** Every string leaf of an "exports" value (conditions nest). */
function targets(value) {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(targets);
}

test("every file the exports map and bin point at is in the package, with the .wasm and the declarations", () => {
  const wanted = [...targets(pkg.exports), ...Object.values(pkg.bin ?? {}), "js/wasm/agent_session_bg.wasm", "js/index.d.ts"];
  for (const target of wanted) {
    const path = target.replace(/^\.\//, "");
    assert.ok(files.has(path), `${path} is not in the package`);
  }
});

test("the license texts of package.json's license are in the package", () => {
  assert.equal(pkg.license, "MIT OR Apache-2.0");
  for (const file of ["LICENSE-MIT", "LICENSE-APACHE"]) assert.ok(files.has(file), `${file} is not in the package`);
  assert.match(readFileSync(`${ROOT}/LICENSE-APACHE`, "utf8"), /Apache License\s+Version 2\.0, January 2004/);
  assert.match(readFileSync(`${ROOT}/LICENSE-MIT`, "utf8"), /Permission is hereby granted, free of charge/);
});

test("every file the README links to is in the package", () => {
  const readme = readFileSync(`${ROOT}/README.md`, "utf8");
  const links = [...readme.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)].map((m) => m[1]).filter((link) => !/^[a-z]+:/.test(link));
  assert.ok(links.length > 5, `links found: ${links}`);
  for (const link of links) {
    const path = link.replace(/^\.\//, "");
    const found = path.endsWith("/") ? [...files].some((file) => file.startsWith(path)) : files.has(path);
    assert.ok(found, `README links to ${link}, which is not in the package`);
  }
});

test("every relative link of every Markdown file in the package leads to a file in the package", () => {
  const broken = [];
  for (const doc of [...files].filter((file) => file.endsWith(".md"))) {
    const text = readFileSync(`${ROOT}/${doc}`, "utf8");
    for (const [, link] of text.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)) {
      if (/^[a-z]+:/.test(link)) continue;
      const path = posix.normalize(posix.join(posix.dirname(doc), link));
      const found = link.endsWith("/") ? [...files].some((file) => file.startsWith(path)) : files.has(path);
      if (!found) broken.push(`${doc} -> ${link}`);
    }
  }
  assert.deepEqual(broken, [], "links to files the package does not ship");
});

test("nothing of the tests, benchmark scripts, build output or sources is in the package", () => {
  for (const file of files) {
    assert.ok(!/^(tests|test-results|target|src|scripts|www|node_modules)\//.test(file), `${file} should not ship`);
    assert.ok(!/^bench\/.*\.mjs$/.test(file), `${file} should not ship`);
  }
});

test("the packed tarball, installed into a new project, runs a turn; every entry point and the command load from it", () => {
  const dir = mkdtempSync(join(tmpdir(), "agent-session-pack-"));
  try {
    execFileSync("npm", ["pack", "--pack-destination", dir, "--ignore-scripts", "--silent"], { cwd: ROOT, encoding: "utf8" });
    const project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "first-project", version: "1.0.0", type: "module", private: true }));
    const tarball = join(dir, `${pkg.name}-${pkg.version}.tgz`);
    execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: project, encoding: "utf8" });
    // The frameworks are optional peers: linked in from this repository's node_modules.
    for (const scope of ["@langchain", "@openai", "@strands-agents"]) {
      symlinkSync(join(ROOT, "node_modules", scope), join(project, "node_modules", scope), "dir");
    }
    writeFileSync(
      join(project, "first.mjs"),
      `import { SessionStore, ConcurrencyError } from "agent-session";
import { memoryKv } from "agent-session/adapters";
const store = await SessionStore.kv(memoryKv());
const session = await store.open("chat");
await session.invoke((inv) => inv.appendMessage({ role: "user", content: "hi" }));
const held = await session.begin();
const busy = await (await store.open("chat")).begin().catch((error) => error);
await held.abort();
const frameworks = await Promise.all(["langgraph", "openai-agents", "strands"].map((name) => import("agent-session/" + name)));
console.log(JSON.stringify({ messages: session.messages(), busy: busy instanceof ConcurrencyError, exports: frameworks.map((m) => Object.keys(m).length) }));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ["first.mjs"], { cwd: project, encoding: "utf8" }));
    assert.deepEqual(out.messages, [{ role: "user", content: "hi" }]);
    assert.equal(out.busy, true);
    assert.ok(out.exports.every((count) => count > 0), JSON.stringify(out.exports));
    const help = execFileSync(process.execPath, [join(project, "node_modules", pkg.name, "bin", "agent-session.mjs"), "--help"], { encoding: "utf8" });
    assert.match(help, /agent-session export/);
    // Every entry's types resolve under each moduleResolution a TypeScript project may use, node10
    // (no "exports": package.json's typesVersions) included.
    writeFileSync(
      join(project, "types.ts"),
      `import type { SessionStore } from "agent-session";
import type { memoryKv } from "agent-session/adapters";
import type { AgentSessionSaver } from "agent-session/langgraph";
import type { AgentSessionItems } from "agent-session/openai-agents";
import type { AgentSessionManager } from "agent-session/strands";
export type Entries = [SessionStore, typeof memoryKv, AgentSessionSaver, AgentSessionItems, AgentSessionManager];
`,
    );
    for (const [module, moduleResolution] of [["commonjs", "node10"], ["nodenext", "nodenext"], ["esnext", "bundler"]]) {
      const options = { module, moduleResolution, target: "es2022", strict: true, noEmit: true, skipLibCheck: true, types: [] };
      writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["types.ts"] }));
      const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
      const checked = spawnSync(process.execPath, [tsc, "-p", project], { encoding: "utf8" });
      assert.equal(checked.status, 0, `${moduleResolution}: ${checked.stdout}${checked.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
