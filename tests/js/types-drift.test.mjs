// The public types cannot drift from the code: js/index.d.ts is read with the TypeScript compiler API,
// the Rust sources are read as text, and each list below is compared both ways:
//   - error classes: declared ⇔ exported by the package (each an AgentSessionError);
//   - error codes: declared `code` literals ⇔ runtime `prototype.code` ⇔ the `byCode` table of
//     js/errors.js ⇔ the `ErrorCode` union ⇔ the codes Rust produces (`code()`, `make_error("…")`);
//   - StoreEvent `type`s ⇔ the `kind`s the engine emits (src/engine/**/*.rs);
//   - SessionEvent `type`s ⇔ `Event::type_name()` plus what the bindings write as `type` themselves;
//   - the options interfaces (StoreOptions, KvStoreOptions, …, nested `limits`, `cache`, `onBusy`)
//     ⇔ the option names the bindings read (`options.positive("leaseMs")`, …).
// Every failure names the missing name and the side it is missing on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import ts from "typescript";
import * as api from "agent-session";
import { byCode } from "../../js/errors.js";

const root = new URL("../../", import.meta.url);
const read = (path) => readFileSync(new URL(path, root), "utf8");
const DTS = "js/index.d.ts";

/** Fails with every problem, one a line; passes when there is none. */
function noDrift(problems) {
  if (problems.length > 0) assert.fail(`${problems.length} drift(s):\n  - ${problems.join("\n  - ")}`);
}

/** Both-ways comparison of two name sets, with messages naming the side a name is missing on;
 * `right` may be a Map from name to where it was found. */
function compare(problems, what, left, leftSide, right, rightSide) {
  const l = new Set(left);
  const r = right instanceof Map ? right : new Map([...right].map((name) => [name, undefined]));
  for (const name of [...l].sort()) {
    if (!r.has(name)) problems.push(`${what}: "${name}" is in ${leftSide} but not in ${rightSide}`);
  }
  for (const name of [...r.keys()].sort()) {
    const where = r.get(name) ? ` (at ${r.get(name)})` : "";
    if (!l.has(name)) problems.push(`${what}: "${name}" is in ${rightSide}${where} but not in ${leftSide}`);
  }
}

// ---------------------------------------------------------------------------------------------
// js/index.d.ts, through the TypeScript AST

const dtsText = read(DTS);
const dts = ts.createSourceFile(DTS, dtsText, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
const interfaces = new Map();
const aliases = new Map();
const classes = new Map();
for (const statement of dts.statements) {
  if (ts.isInterfaceDeclaration(statement)) interfaces.set(statement.name.text, statement);
  else if (ts.isTypeAliasDeclaration(statement)) aliases.set(statement.name.text, statement);
  else if (ts.isClassDeclaration(statement) && statement.name) classes.set(statement.name.text, statement);
}

const memberName = (member) =>
  member.name && (ts.isIdentifier(member.name) || ts.isStringLiteral(member.name)) ? member.name.text : undefined;

function extendsNames(declaration) {
  const names = [];
  for (const clause of declaration.heritageClauses ?? []) {
    if (clause.token !== ts.SyntaxKind.ExtendsKeyword) continue;
    for (const type of clause.types) names.push(type.expression.getText(dts));
  }
  return names;
}

/** Named members of an interface or class (with what it extends, when declared in this file). */
function membersOf(name, seen = new Set()) {
  const declaration = interfaces.get(name) ?? classes.get(name);
  assert.ok(declaration, `${DTS} declares no interface or class ${name}`);
  const members = new Map();
  for (const base of extendsNames(declaration)) {
    if ((interfaces.has(base) || classes.has(base)) && !seen.has(base)) {
      for (const [key, value] of membersOf(base, new Set([...seen, name]))) members.set(key, value);
    }
  }
  for (const member of declaration.members) {
    const key = memberName(member);
    if (key !== undefined) members.set(key, member);
  }
  return members;
}

/** The string literals of a type (`"a" | "b"`), or `null` when it is not made only of them. */
function stringLiterals(type) {
  if (ts.isParenthesizedTypeNode(type)) return stringLiterals(type.type);
  if (ts.isLiteralTypeNode(type) && ts.isStringLiteral(type.literal)) return [type.literal.text];
  if (ts.isUnionTypeNode(type)) {
    const parts = type.types.map(stringLiterals);
    return parts.includes(null) ? null : parts.flat();
  }
  return null;
}

/** The `type` literal of each member of a union of interfaces (`SessionEvent`, `StoreEvent`). */
function unionTypeTags(aliasName) {
  const alias = aliases.get(aliasName);
  assert.ok(alias, `${DTS} declares no type ${aliasName}`);
  assert.ok(ts.isUnionTypeNode(alias.type), `${DTS}: ${aliasName} is not a union`);
  const tags = [];
  for (const part of alias.type.types) {
    assert.ok(ts.isTypeReferenceNode(part), `${DTS}: ${aliasName} member ${part.getText(dts)} is not a named interface`);
    const name = part.typeName.getText(dts);
    const type = membersOf(name).get("type");
    const literals = type?.type && stringLiterals(type.type);
    assert.ok(literals?.length === 1, `${DTS}: ${name} (in ${aliasName}) has no single string literal \`type\``);
    tags.push(literals[0]);
  }
  return tags;
}

// ---------------------------------------------------------------------------------------------
// Rust sources, as text

/** `source` with comments blanked (same length) and a copy with string/char literal contents blanked
 * too, so that braces and parentheses can be matched on the latter and literals read from the former. */
function rustText(source) {
  const code = source.split("");
  const mask = source.split("");
  const blank = (array, from, to) => {
    for (let k = from; k < to; k++) if (array[k] !== "\n") array[k] = " ";
  };
  let i = 0;
  while (i < source.length) {
    const rest = source.slice(i, i + 3);
    if (rest.startsWith("//")) {
      const end = source.indexOf("\n", i);
      const stop = end === -1 ? source.length : end;
      blank(code, i, stop);
      blank(mask, i, stop);
      i = stop;
    } else if (rest.startsWith("/*")) {
      let depth = 0;
      let k = i;
      do {
        if (source.startsWith("/*", k)) {
          depth++;
          k += 2;
        } else if (source.startsWith("*/", k)) {
          depth--;
          k += 2;
        } else k++;
      } while (depth > 0 && k < source.length);
      blank(code, i, k);
      blank(mask, i, k);
      i = k;
    } else {
      const raw = /^b?r(#*)"/.exec(source.slice(i, i + 40));
      const before = source[i - 1] ?? " ";
      if (raw && !/[\w]/.test(before)) {
        const close = `"${raw[1]}`;
        const end = source.indexOf(close, i + raw[0].length) + close.length;
        blank(mask, i + raw[0].length, end - close.length);
        i = end;
      } else if (source[i] === '"') {
        let k = i + 1;
        while (k < source.length && source[k] !== '"') k += source[k] === "\\" ? 2 : 1;
        blank(mask, i + 1, k);
        i = k + 1;
      } else if (source[i] === "'") {
        const char = /^'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'/.exec(source.slice(i, i + 12));
        if (char) {
          blank(mask, i + 1, i + char[0].length - 1);
          i += char[0].length;
        } else i++; // a lifetime
      } else i++;
    }
  }
  return { code: code.join(""), mask: mask.join("") };
}

/** Index just past the bracket that closes the one at `open` (matched on the masked text). */
function closing(mask, open) {
  const pairs = { "{": "}", "(": ")", "[": "]" };
  const stack = [];
  for (let k = open; k < mask.length; k++) {
    const c = mask[k];
    if (pairs[c]) stack.push(pairs[c]);
    else if (c === "}" || c === ")" || c === "]") {
      assert.equal(c, stack.pop(), `unbalanced brackets near offset ${k}`);
      if (stack.length === 0) return k + 1;
    }
  }
  throw new Error(`no bracket closes offset ${open}`);
}

/** Top-level comma-separated parts of the text between `open` (a parenthesis) and its match. */
function args(text, open) {
  const end = closing(text.mask, open) - 1;
  const parts = [];
  let depth = 0;
  let start = open + 1;
  for (let k = open + 1; k < end; k++) {
    const c = text.mask[k];
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.code.slice(start, k).trim());
      start = k + 1;
    }
  }
  const last = text.code.slice(start, end).trim();
  if (last) parts.push(last);
  return parts;
}

const lineOf = (source, index) => source.slice(0, index).split("\n").length;

class RustFile {
  constructor(path) {
    this.path = path;
    this.source = read(path);
    this.text = rustText(this.source);
    this.fns = [];
    for (const m of this.text.mask.matchAll(/\bfn\s+(\w+)/g)) {
      const paren = this.text.mask.indexOf("(", m.index);
      const paramsEnd = closing(this.text.mask, paren);
      const brace = this.text.mask.slice(paramsEnd).search(/[{;]/) + paramsEnd;
      if (this.text.mask[brace] !== "{") continue; // a trait method without a body
      const end = closing(this.text.mask, brace);
      this.fns.push({
        name: m[1],
        start: m.index,
        params: this.text.code.slice(paren + 1, paramsEnd - 1),
        bodyStart: brace,
        end,
        body: this.text.code.slice(brace, end),
      });
    }
  }

  where(index) {
    return `${this.path}:${lineOf(this.source, index)}`;
  }

  /** The function `name` (the first of that name that starts in [from, to)). */
  fn(name, from = 0, to = Infinity) {
    return this.fns.find((f) => f.name === name && f.start >= from && f.start < to);
  }

  /** The innermost function whose body holds `index`. */
  enclosing(index) {
    return this.fns.filter((f) => f.bodyStart <= index && index < f.end).sort((a, b) => b.bodyStart - a.bodyStart)[0];
  }

  /** String literals in [from, to) of the comment-free text. */
  literals(from, to) {
    return [...this.text.code.slice(from, to).matchAll(/"((?:\\.|[^"\\])*)"/g)].map((m) => m[1]);
  }
}

function rustFiles(dir) {
  const out = [];
  for (const entry of readdirSync(new URL(dir, root), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...rustFiles(path));
    else if (entry.name.endsWith(".rs")) out.push(new RustFile(path));
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

// ---------------------------------------------------------------------------------------------
// Error classes and codes

const declaredErrors = [...classes.values()].filter((c) => c.name.text.endsWith("Error"));
const declaredErrorNames = declaredErrors.map((c) => c.name.text);

/** The declared `code` of a class: its string literals, or "string". */
function declaredCode(declaration) {
  const member = declaration.members.find((m) => memberName(m) === "code");
  if (!member?.type) return undefined;
  if (member.type.kind === ts.SyntaxKind.StringKeyword) return "string";
  return stringLiterals(member.type);
}

/** Declared classes extending `name`, directly or not. */
function subclassesOf(name) {
  const out = [];
  for (const c of declaredErrors) {
    let base = extendsNames(c)[0];
    while (base && base !== name) base = classes.get(base) && extendsNames(classes.get(base))[0];
    if (base === name) out.push(c.name.text);
  }
  return out;
}

const exportedErrorNames = Object.entries(api)
  .filter(([, value]) => typeof value === "function" && value.prototype instanceof Error)
  .map(([name]) => name);

/** Every code literal a declared error class states. */
const declaredCodes = [
  ...new Set(declaredErrors.flatMap((c) => (Array.isArray(declaredCode(c)) ? declaredCode(c) : []))),
];

test(`error classes: every error class declared in ${DTS} is exported by the package as an AgentSessionError, and the reverse`, () => {
  const problems = [];
  compare(
    problems,
    "error class",
    declaredErrorNames,
    `${DTS} (export declare class)`,
    exportedErrorNames,
    `the exports of "agent-session"`,
  );
  for (const name of declaredErrorNames) {
    const Class = api[name];
    if (typeof Class !== "function") continue;
    const instance = new Class("probe");
    if (!(instance instanceof api.AgentSessionError)) {
      problems.push(`error class: new ${name}() from "agent-session" is not instanceof AgentSessionError`);
    }
    if (instance.name !== name) problems.push(`error class: new ${name}().name is "${instance.name}", not "${name}"`);
    const declaration = classes.get(name);
    const base = extendsNames(declaration)[0];
    const runtimeBase = Object.getPrototypeOf(Class);
    if (base && runtimeBase.name !== base) {
      problems.push(`error class: ${name} extends ${base} in ${DTS} but extends ${runtimeBase.name} at run time`);
    }
  }
  noDrift(problems);
});

test(`error codes: each declared \`code\` in ${DTS} is the runtime prototype.code, and js/errors.js byCode has no code without a declared class`, () => {
  const problems = [];
  for (const declaration of declaredErrors) {
    const name = declaration.name.text;
    const code = declaredCode(declaration);
    const Class = api[name];
    if (typeof Class !== "function") continue; // reported by the test above
    const runtime = Class.prototype.code;
    if (code === undefined) {
      problems.push(`error code: ${name} in ${DTS} declares no \`readonly code\` (its runtime code is "${runtime}")`);
    } else if (code === "string") {
      if (typeof runtime !== "string") problems.push(`error code: ${name}.prototype.code is not a string at run time`);
    } else {
      if (!code.includes(runtime)) {
        problems.push(`error code: ${name}.prototype.code is "${runtime}" at run time but ${DTS} declares ${code.map((c) => `"${c}"`).join(" | ")}`);
      }
      // A union (InvalidTransitionError) covers its own code and its subclasses' codes, nothing else.
      const produced = new Set([runtime, ...subclassesOf(name).map((sub) => api[sub]?.prototype.code)]);
      for (const literal of code) {
        if (!produced.has(literal)) {
          problems.push(`error code: ${name} in ${DTS} declares code "${literal}" but neither ${name} nor a subclass has it at run time`);
        }
      }
      for (const literal of produced) {
        if (literal !== undefined && !code.includes(literal)) {
          problems.push(`error code: ${name} or a subclass has code "${literal}" at run time but ${name} in ${DTS} declares only ${code.map((c) => `"${c}"`).join(" | ")}`);
        }
      }
    }
  }
  for (const [code, Class] of Object.entries(byCode)) {
    if (Class.prototype.code !== code) {
      problems.push(`error code: js/errors.js byCode maps "${code}" to ${Class.name}, whose prototype.code is "${Class.prototype.code}"`);
    }
    if (!declaredErrorNames.includes(Class.name)) {
      problems.push(`error code: js/errors.js byCode maps "${code}" to ${Class.name}, which ${DTS} does not declare`);
    }
  }
  compare(problems, "error code", declaredCodes, `the code literals of ${DTS}`, Object.keys(byCode), "js/errors.js byCode");
  noDrift(problems);
});

test(`error codes: the ErrorCode union of ${DTS} is the set of codes of the declared error classes`, () => {
  const alias = aliases.get("ErrorCode");
  assert.ok(alias, `${DTS} declares no ErrorCode`);
  const union = stringLiterals(alias.type);
  assert.ok(union, `${DTS}: ErrorCode is not a union of string literals`);
  const problems = [];
  compare(problems, "error code", union, `${DTS} ErrorCode`, declaredCodes, `the \`code\` of the error classes of ${DTS}`);
  noDrift(problems);
});

test(`error codes: the codes Rust produces (code(), make_error("…")) are the codes of the classes declared in ${DTS}`, () => {
  const rustCodes = new Map(); // code -> where
  const note = (code, where) => rustCodes.set(code, rustCodes.get(code) ?? where);
  for (const path of ["src/core/error.rs", "src/engine/error.rs", "src/store/mod.rs"]) {
    const file = new RustFile(path);
    const codeFns = file.fns.filter((f) => f.name === "code");
    assert.ok(codeFns.length > 0, `${path} has no fn code(): update this test to where the error codes are`);
    for (const f of codeFns) for (const literal of file.literals(f.bodyStart, f.end)) note(literal, file.where(f.start));
  }
  let makeErrorCalls = 0;
  for (const file of rustFiles("src/bindings")) {
    for (const m of file.text.mask.matchAll(/\bmake_error\s*\(/g)) {
      if (/\bfn\s+$/.test(file.text.mask.slice(Math.max(0, m.index - 10), m.index))) continue; // its declaration
      const first = args(file.text, m.index + m[0].length - 1)[0];
      const literal = /^"([^"]*)"$/.exec(first);
      if (literal) {
        note(literal[1], file.where(m.index));
        makeErrorCalls++;
      } else if (!/\.code\(\)$/.test(first)) {
        assert.fail(`${file.where(m.index)}: make_error(${first}, …) takes a code this test cannot read; make it a literal or a .code() call`);
      }
    }
  }
  assert.ok(makeErrorCalls > 0, "found no make_error(\"…\") call in src/bindings: update this test");
  const problems = [];
  compare(
    problems,
    "error code",
    declaredCodes,
    `the \`code\` of the error classes of ${DTS}`,
    rustCodes,
    "the codes Rust produces (code() in src/core/error.rs, src/engine/error.rs, src/store/mod.rs; make_error in src/bindings)",
  );
  noDrift(problems);
});

// ---------------------------------------------------------------------------------------------
// Events

/** Every `kind` the engine gives a StoreEvent, with where. */
function emittedStoreEventKinds() {
  const kinds = new Map();
  const note = (kind, where) => kinds.set(kind, kinds.get(kind) ?? where);
  const files = rustFiles("src/engine");
  // Functions that build a StoreEvent from a `kind: &'static str` parameter (like Invocation::event).
  const helpers = new Map(); // name -> index of the kind parameter among call arguments
  for (const file of files) {
    for (const f of file.fns) {
      const params = f.params.split(",").map((p) => p.trim()).filter((p) => p && !/^&?(mut\s+)?self$|^&'\w+\s+self$/.test(p));
      const index = params.findIndex((p) => /^kind\s*:\s*&'static\s+str$/.test(p));
      if (index !== -1 && /\bStoreEvent\b/.test(f.body)) helpers.set(f.name, index);
    }
  }
  /** The literals a `kind` expression stands for: a literal, or a `let` bound to a match/if of literals. */
  const resolve = (file, expression, index, context) => {
    const literal = /^"([^"]*)"$/.exec(expression);
    if (literal) return note(literal[1], file.where(index));
    const f = file.enclosing(index);
    if (/^\w+$/.test(expression) && f) {
      if (helpers.has(f.name) && new RegExp(`\\b${expression}\\s*:\\s*&'static\\s+str`).test(f.params)) return; // the helper's own parameter
      const binding = new RegExp(`\\blet\\s+${expression}\\s*=\\s*(match|if)\\b`).exec(f.body);
      if (binding) {
        const at = f.bodyStart + binding.index;
        const open = file.text.mask.indexOf("{", at + binding[0].length);
        const end = closing(file.text.mask, open);
        const block = file.text.code.slice(at, end);
        const values =
          binding[1] === "match"
            ? [...block.matchAll(/=>\s*"([^"]*)"/g)].map((m) => m[1])
            : [...file.text.code.slice(at, file.text.mask.indexOf(";", end)).matchAll(/\{\s*"([^"]*)"\s*\}/g)].map((m) => m[1]);
        if (values.length > 0) return values.forEach((v) => note(v, file.where(at)));
      }
    }
    assert.fail(`${file.where(index)}: cannot tell which StoreEvent kind ${context} gives (${expression}); make it a literal or teach this test`);
  };
  for (const file of files) {
    const { mask, code } = file.text;
    for (const m of mask.matchAll(/\bStoreEvent\s*\{/g)) {
      if (/(?:\b(?:struct|for|impl)|->)\s*$/.test(mask.slice(Math.max(0, m.index - 12), m.index))) continue; // not a value
      const open = m.index + m[0].length - 1;
      const body = code.slice(open, closing(mask, open));
      const field = /[{,]\s*kind\s*(?::\s*([^,}]+?))?\s*[,}]/.exec(body);
      const base = /\.\.\s*(?:self\.)?(\w+)\s*\(/.exec(body);
      if (field) resolve(file, field[1]?.trim() ?? "kind", open + field.index, "this StoreEvent");
      else if (!(base && helpers.has(base[1]))) {
        assert.fail(`${file.where(m.index)}: a StoreEvent whose kind this test cannot find; give it \`kind: "…"\` or build it with a kind helper`);
      }
    }
    for (const [name, position] of helpers) {
      for (const m of mask.matchAll(new RegExp(`(?<!fn\\s+)\\b${name}\\s*\\(`, "g"))) {
        const expression = args(file.text, m.index + m[0].length - 1)[position];
        if (expression !== undefined) resolve(file, expression, m.index, `${name}(…)`);
      }
    }
  }
  return kinds;
}

test(`StoreEvent: the \`type\`s of the StoreEvent union of ${DTS} are the kinds the engine emits`, () => {
  const bindings = read("src/bindings/store.rs");
  assert.match(
    bindings,
    /set\(\s*&\w+\s*,\s*"type"\s*,\s*event\.kind\.into\(\)\s*\)/,
    "src/bindings/store.rs no longer sets a StoreEvent's `type` to the engine's `kind` as is: update this test",
  );
  const kinds = emittedStoreEventKinds();
  const problems = [];
  compare(problems, "StoreEvent type", unionTypeTags("StoreEvent"), `${DTS} StoreEvent`, kinds, "the kinds src/engine emits");
  noDrift(problems);
});

test(`SessionEvent: the \`type\`s of the SessionEvent union of ${DTS} are the history event types the code produces`, () => {
  const event = new RustFile("src/core/event.rs");
  const typeName = event.fn("type_name");
  assert.ok(typeName, "src/core/event.rs has no fn type_name: update this test");
  const produced = new Map(event.literals(typeName.bodyStart, typeName.end).map((t) => [t, event.where(typeName.start)]));
  const session = new RustFile("src/bindings/session.rs");
  assert.match(session.text.code, /set\(\s*"type"\s*,\s*\w+\.type_name\(\)/, "src/bindings/session.rs no longer sets `type` from type_name(): update this test");
  // Events the bindings make themselves (`created`, from the session's head).
  for (const m of session.text.code.matchAll(/set\(\s*"type"\s*,\s*"([^"]*)"/g)) produced.set(m[1], session.where(m.index));
  const problems = [];
  compare(
    problems,
    "SessionEvent type",
    unionTypeTags("SessionEvent"),
    `${DTS} SessionEvent`,
    produced,
    "the types the code produces (Event::type_name in src/core/event.rs, set(\"type\", …) in src/bindings/session.rs)",
  );
  noDrift(problems);
});

// ---------------------------------------------------------------------------------------------
// Options

const bindingFiles = rustFiles("src/bindings");
const convert = bindingFiles.find((f) => f.path === "src/bindings/convert.rs");

/** The methods of `Options` (src/bindings/convert.rs) that read the property named by their key. */
const readers = (() => {
  const impl = /\bimpl\s+Options\s*\{/.exec(convert.text.mask);
  assert.ok(impl, "src/bindings/convert.rs has no `impl Options`: update this test");
  const end = closing(convert.text.mask, impl.index + impl[0].length - 1);
  const methods = convert.fns.filter((f) => f.start > impl.index && f.start < end && /\bkey\s*:\s*&str\b/.test(f.params));
  const found = new Set(methods.filter((f) => /\b(Reflect|caught)::get\(/.test(f.body)).map((f) => f.name));
  for (let grew = true; grew; ) {
    grew = false;
    for (const f of methods) {
      if (!found.has(f.name) && [...found].some((r) => new RegExp(`self\\.${r}\\(\\s*key\\b`).test(f.body))) {
        found.add(f.name);
        grew = true;
      }
    }
  }
  assert.ok(found.has("get") && found.has("object"), "Options readers not found in src/bindings/convert.rs: update this test");
  return [...found];
})();

/** The free functions of src/bindings/convert.rs that read an options argument themselves
 * (`agent_option`): the bindings of every file call them. */
const sharedOptionReaders = convert.fns.filter((f) => /Options::new\s*\(/.test(f.body) && !/\bself\b/.test(f.params));

/** What a function reads of its options, following calls to functions of the same file (and to
 * convert.rs's shared readers):
 * Map from path ("options", "options.limits", …) to the set of keys read there. */
function optionReads(file, f, seen = new Set()) {
  const reads = new Map();
  const add = (path, key) => {
    if (!reads.has(path)) reads.set(path, new Set());
    if (key !== undefined) reads.get(path).add(key);
  };
  if (seen.has(f)) return reads;
  seen.add(f);
  const body = f.body;
  const mask = file.text.mask.slice(f.bodyStart, f.end);
  const vars = new Map(); // variable -> path
  const readerGroup = readers.join("|");
  // In order of appearance: `Options::new(v, "path")` (bound or chained), `x.object("key")` bindings.
  for (const m of body.matchAll(/Options::new\s*\(/g)) {
    const parts = args({ code: body, mask }, m.index + m[0].length - 1);
    const path = /^"([^"]+)"$/.exec(parts[1] ?? "")?.[1];
    if (!path) assert.fail(`${file.where(f.bodyStart + m.index)}: Options::new without a literal path; teach this test`);
    add(path);
    const before = /let\s+(?:mut\s+)?(\w+)\s*=\s*$/.exec(body.slice(0, m.index));
    if (before) vars.set(before[1], path);
    const after = closing(mask, m.index + m[0].length - 1);
    const chained = new RegExp(`^\\s*\\?\\s*\\.(${readerGroup})\\(\\s*"([^"]+)"`).exec(body.slice(after));
    if (chained) add(path, chained[2]);
  }
  for (const m of body.matchAll(/let\s+(?:mut\s+)?(\w+)\s*=\s*(\w+)\.object\(\s*"([^"]+)"/g)) {
    if (vars.has(m[2])) {
      vars.set(m[1], `${vars.get(m[2])}.${m[3]}`);
      add(`${vars.get(m[2])}.${m[3]}`);
    }
  }
  for (const m of body.matchAll(new RegExp(`(?<![\\w.:])(\\w+)\\.(${readerGroup})\\(\\s*"([^"]+)"`, "g"))) {
    if (vars.has(m[1])) add(vars.get(m[1]), m[3]);
  }
  // Calls to functions of this file: helpers that take `&Options` and a key literal read that key;
  // others are followed.
  for (const m of mask.matchAll(/(?<![\w.:])(\w+)\s*\(/g)) {
    const local = file.fns.find((g) => g.name === m[1]);
    const shared = local ? undefined : sharedOptionReaders.find((g) => g.name === m[1]);
    const callee = local ?? shared;
    if (!callee || callee === f) continue;
    if (/:\s*&Options\b/.test(callee.params)) {
      const parts = args({ code: body, mask }, m.index + m[0].length - 1);
      const variable = /^&?(\w+)$/.exec(parts[0] ?? "")?.[1];
      const key = /^"([^"]+)"$/.exec(parts[1] ?? "")?.[1];
      if (vars.has(variable) && key) add(vars.get(variable), key);
      continue;
    }
    for (const [path, keys] of optionReads(local ? file : convert, callee, seen)) {
      add(path);
      for (const key of keys) add(path, key);
    }
  }
  return reads;
}

/** The `#[wasm_bindgen(js_class = X)]` methods: { className, jsName, file, fn }. */
const jsMethods = (() => {
  const out = [];
  for (const file of bindingFiles) {
    for (const impl of file.text.code.matchAll(/#\[wasm_bindgen\(\s*js_class\s*=\s*(\w+)\s*\)\]\s*impl\s+\w+\s*\{/g)) {
      const open = impl.index + impl[0].length - 1;
      const end = closing(file.text.mask, open);
      const block = file.text.code.slice(open, end);
      for (const m of block.matchAll(/((?:#\[[^\]]*\]\s*)*)pub\s+fn\s+(\w+)/g)) {
        const jsName = /js_name\s*=\s*(\w+)/.exec(m[1])?.[1] ?? m[2];
        const f = file.fn(m[2], open, end);
        out.push({ className: impl[1], jsName, getter: /\bgetter\b/.test(m[1]), file, fn: f });
      }
    }
  }
  return out;
})();

/** Whether a property's type is an options object of its own (compared key by key): a type literal,
 * or an interface named `…Options` or `Limits`. */
function nestedMembers(type) {
  if (ts.isParenthesizedTypeNode(type)) return nestedMembers(type.type);
  if (ts.isUnionTypeNode(type)) {
    const parts = type.types.map(nestedMembers).filter(Boolean);
    return parts.length ? new Map(parts.flatMap((p) => [...p])) : undefined;
  }
  if (ts.isTypeLiteralNode(type)) {
    return new Map(type.members.map((m) => [memberName(m), m]).filter(([k]) => k !== undefined));
  }
  if (ts.isTypeReferenceNode(type)) {
    const name = type.typeName.getText(dts);
    if (interfaces.has(name) && (/Options$/.test(name) || name === "Limits")) return membersOf(name);
  }
  return undefined;
}

/** Compares the options declared by `members` (at `path`) with what Rust reads, recursively. */
function compareOptions(problems, label, typeLabel, members, reads, path, rustSide) {
  const readHere = reads.get(path) ?? new Set();
  compare(problems, `${label} ${path}`, [...members.keys()], `${typeLabel} in ${DTS}`, [...readHere], `what ${rustSide} reads`);
  const nestedPaths = [...reads.keys()].filter((p) => p.startsWith(`${path}.`) && !p.slice(path.length + 1).includes("."));
  for (const [key, member] of members) {
    const nested = member.type && nestedMembers(member.type);
    const nestedPath = `${path}.${key}`;
    if (nested && !reads.has(nestedPath)) {
      problems.push(`${label} ${nestedPath}: ${DTS} declares an options object (${member.type.getText(dts)}) but ${rustSide} does not read one there`);
    } else if (nested) {
      compareOptions(problems, label, `${typeLabel}.${key} (${member.type.getText(dts)})`, nested, reads, nestedPath, rustSide);
    }
  }
  for (const nestedPath of nestedPaths) {
    const key = nestedPath.slice(path.length + 1);
    const member = members.get(key);
    if (member && !(member.type && nestedMembers(member.type))) {
      problems.push(`${label} ${nestedPath}: ${rustSide} reads it as an options object but ${typeLabel} in ${DTS} does not declare an object type for it`);
    }
  }
}

/** The d.ts methods that take an options interface: { className, method, typeName }. */
const declaredOptionMethods = (() => {
  const out = [];
  const owners = new Set(jsMethods.map((m) => m.className));
  for (const className of owners) {
    const declaration = classes.get(className) ?? interfaces.get(className);
    if (!declaration) continue;
    for (const member of declaration.members) {
      if (!(ts.isMethodDeclaration(member) || ts.isMethodSignature(member))) continue;
      for (const parameter of member.parameters) {
        const type = parameter.type;
        if (type && ts.isTypeReferenceNode(type) && /Options$/.test(type.typeName.getText(dts))) {
          out.push({ className, method: memberName(member), typeName: type.typeName.getText(dts) });
        }
      }
    }
  }
  return out;
})();

test("options: the d.ts methods that take options are found in the Rust bindings", () => {
  assert.ok(declaredOptionMethods.length >= 10, `found only ${declaredOptionMethods.length} methods taking options in ${DTS}`);
  for (const name of ["StoreOptions", "IndexedDbStoreOptions", "KvStoreOptions", "OpenOptions", "BeginOptions"]) {
    assert.ok(declaredOptionMethods.some((m) => m.typeName === name), `no method of ${DTS} takes ${name}: update this test`);
  }
});

for (const { className, method, typeName } of declaredOptionMethods) {
  test(`options: ${className}.${method}(${typeName}) in ${DTS} ⇔ the option names the bindings read`, () => {
    const rust = jsMethods.find((m) => m.className === className && m.jsName === method);
    assert.ok(rust?.fn, `${DTS} declares ${className}.${method}(options?: ${typeName}) but src/bindings has no #[wasm_bindgen(js_class = ${className})] method ${method}`);
    const reads = optionReads(rust.file, rust.fn);
    const rustSide = `${rust.file.path} (${className}.${method}, fn ${rust.fn.name})`;
    assert.ok(reads.has("options"), `${rustSide} reads no options (no Options::new(…, "options")) but ${DTS} gives ${className}.${method} a ${typeName}`);
    const problems = [];
    compareOptions(problems, `${className}.${method}`, typeName, membersOf(typeName), reads, "options", rustSide);
    noDrift(problems);
  });
}

test(`options: every bindings method that reads options declares an options parameter in ${DTS}`, () => {
  const problems = [];
  for (const m of jsMethods) {
    if (!m.fn || m.getter) continue;
    const reads = optionReads(m.file, m.fn);
    const keys = [...reads.values()].flatMap((s) => [...s]);
    if (keys.length === 0) continue;
    if (!declaredOptionMethods.some((d) => d.className === m.className && d.method === m.jsName)) {
      problems.push(`options: ${m.file.path} ${m.className}.${m.jsName} reads options (${keys.join(", ")}) but ${DTS} declares no …Options parameter for ${m.className}.${m.jsName}`);
    }
  }
  noDrift(problems);
});
