// `--json=path`: a benchmark writes the raw numbers it computed there, with the markdown it printed,
// for bench/report.mjs. Without the option a benchmark prints exactly what it printed before.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The path given as `--json=path`, or undefined. */
export function jsonPath(argv = process.argv.slice(2)) {
  return argv.find((arg) => arg.startsWith("--json="))?.slice("--json=".length) || undefined;
}

/** console.log that keeps what it printed: `log(text)`, then `text()` is every call joined by newlines. */
export function printer() {
  const printed = [];
  return {
    log(text) {
      console.log(text);
      printed.push(text);
    },
    text: () => printed.join("\n"),
  };
}

/**
 * Writes `{ name, title, command, date, seconds, node, platform, markdown, data, ...more }` to `path`
 * (nothing when `path` is undefined). `command` is the node command line as run; `seconds` the time
 * since this process started; `script` is the benchmark's import.meta.url.
 */
export function writeJson(path, script, { name, title, markdown, data, ...more }) {
  if (!path) return;
  const root = fileURLToPath(new URL("..", import.meta.url));
  const command = ["node", relative(root, fileURLToPath(script)), ...process.argv.slice(2)].join(" ");
  const record = {
    name, title, command, date: new Date().toISOString(), seconds: Math.round(process.uptime() * 10) / 10,
    node: process.version, platform: `${process.platform}/${process.arch}`, ...more, markdown, data,
  };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(record, null, 1)}\n`);
}
