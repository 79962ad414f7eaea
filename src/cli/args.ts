/**
 * Typed command-line arguments on Node's own `util.parseArgs` (its tokens: the forms it accepts
 * and how it splits them), with our checks and messages on top: numbers, required options and
 * positionals, and "did you mean" for unknown options; plus dotted-path config overrides.
 *
 *   const spec = {
 *     usage: "mmntp generate",
 *     positionals: [{ name: "prompt", help: "caption to draw" }],
 *     options: [
 *       { name: "out", short: "o", type: "string", required: true, help: "PNG to write" },
 *       { name: "count", type: "number", default: 8, help: "images to generate" },
 *     ],
 *   } as const;
 *   const r = parseArgs(process.argv.slice(3), spec);
 *   if (r.kind === "help") console.log(r.text);
 *   else r.values.count; // number
 *
 * Accepted forms: `--name value`, `--name=value`, `-n value`, `--flag`, `--no-flag`, `--` (the
 * rest are positionals); a value may start with "-" ("--temperature -0.5"). `-h`/`--help`
 * anywhere before `--` asks for the help text. Rest positionals (`rest: true` on the last) take
 * every remaining argument.
 */
import { parseArgs as nodeParseArgs } from "node:util";
import { InputError } from "../io/errors.ts";

/** `--json`, which every command takes. */
export const JSON_OPTION = { name: "json", type: "boolean", help: "print one JSON object on stdout (progress stays on stderr)" } as const;

export type OptionType = "string" | "number" | "boolean";
type Scalar<T extends OptionType> = T extends "string" ? string : T extends "number" ? number : boolean;

export type OptionSpec = {
  /** Long name: `--name`, and the key in `values`. */
  readonly name: string;
  readonly type: OptionType;
  readonly help: string;
  /** One-letter alias: `-o`. */
  readonly short?: string;
  readonly default?: string | number | boolean;
  readonly required?: boolean;
  /** May repeat; the value is an array (e.g. `--set a=1 --set b=2`). */
  readonly multiple?: boolean;
  /** Shown in help as `--name <placeholder>`; defaults to the type. */
  readonly placeholder?: string;
};

export type PositionalSpec = {
  readonly name: string;
  readonly help: string;
  readonly optional?: boolean;
  /** The last positional only: takes every remaining argument (a list). */
  readonly rest?: boolean;
};

export type ArgSpec = {
  /** Command shown in the usage line, e.g. "mmntp generate". */
  readonly usage?: string;
  readonly description?: string;
  readonly options: readonly OptionSpec[];
  readonly positionals?: readonly PositionalSpec[];
};

type OptionValue<O extends OptionSpec> = O["multiple"] extends true
  ? Scalar<O["type"]>[]
  : O["type"] extends "boolean"
    ? boolean
    : O extends { readonly default: string | number | boolean }
      ? Scalar<O["type"]>
      : O["required"] extends true
        ? Scalar<O["type"]>
        : Scalar<O["type"]> | undefined;

export type ArgValues<S extends ArgSpec> = { [O in S["options"][number] as O["name"]]: OptionValue<O> };
export type ArgPositionals<S extends ArgSpec> = {
  [P in NonNullable<S["positionals"]>[number] as P["name"]]: P["rest"] extends true ? string[] : P["optional"] extends true ? string | undefined : string;
};
export type ParsedArgs<S extends ArgSpec> =
  | { kind: "help"; text: string }
  | { kind: "args"; values: ArgValues<S>; positionals: ArgPositionals<S> };

/** Parse `argv` (without the program and command) against `spec`; throws on bad input. */
export function parseArgs<const S extends ArgSpec>(argv: readonly string[], spec: S): ParsedArgs<S> {
  checkSpec(spec);
  const byLong = new Map(spec.options.map((o) => [o.name, o]));
  const nodeOptions = Object.fromEntries(
    spec.options.map((o) => [o.name, { type: o.type === "boolean" ? ("boolean" as const) : ("string" as const), ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
  );
  const { tokens } = nodeParseArgs({ args: [...argv], options: nodeOptions, allowPositionals: true, strict: false, tokens: true, allowNegative: true });
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let terminated = false;

  const store = (o: OptionSpec, raw: string | boolean) => {
    const v = typeof raw === "boolean" ? raw : o.type === "number" ? parseNumber(raw, `--${o.name}`) : raw;
    if (o.multiple) values[o.name] = [...((values[o.name] as unknown[] | undefined) ?? []), v];
    else values[o.name] = v;
  };

  for (const t of tokens) {
    if (t.kind === "option-terminator") {
      terminated = true;
      continue;
    }
    if (t.kind === "positional") {
      positionals.push(t.value);
      continue;
    }
    if (t.rawName === "-h" || t.rawName === "--help") return { kind: "help", text: formatHelp(spec) };
    if (/^-\.?\d/.test(t.rawName)) {
      positionals.push(argv[t.index]!); // "-3" is a value
      continue;
    }
    const opt = byLong.get(t.name);
    if (!opt) throw new InputError(unknownOption(t.rawName, spec.options));
    const negated = t.rawName.startsWith("--no-");
    if (opt.type === "boolean") {
      if (t.inlineValue && t.value !== "true" && t.value !== "false") throw new InputError(`${t.rawName} is a flag: use ${t.rawName}, --no-${opt.name}, or ${t.rawName}=true/false; got "${argv[t.index]}"`);
      store(opt, negated ? false : t.value !== "false");
      continue;
    }
    if (negated) throw new InputError(unknownOption(t.rawName, spec.options));
    if (t.value === undefined) throw new InputError(`${t.rawName} expects a ${opt.type} value`);
    store(opt, t.value);
  }
  void terminated;

  for (const o of spec.options) {
    if (values[o.name] !== undefined) continue;
    if (o.required) throw new InputError(`missing required option --${o.name} (${o.help})`);
    values[o.name] = o.multiple ? (o.default === undefined ? [] : [o.default]) : (o.default ?? (o.type === "boolean" ? false : undefined));
  }

  const pspec = spec.positionals ?? [];
  const rest = pspec.at(-1)?.rest === true;
  if (!rest && positionals.length > pspec.length) {
    const extra = positionals.slice(pspec.length).map((p) => JSON.stringify(p)).join(", ");
    throw new InputError(`unexpected argument${positionals.length - pspec.length > 1 ? "s" : ""} ${extra}; usage: ${usageLine(spec)}`);
  }
  const named: Record<string, string | string[] | undefined> = {};
  pspec.forEach((p, i) => {
    if (p.rest) {
      const all = positionals.slice(i);
      if (all.length === 0 && !p.optional) throw new InputError(`missing argument <${p.name}...> (${p.help}); usage: ${usageLine(spec)}`);
      named[p.name] = all;
      return;
    }
    if (positionals[i] === undefined && !p.optional) throw new InputError(`missing argument <${p.name}> (${p.help}); usage: ${usageLine(spec)}`);
    named[p.name] = positionals[i];
  });
  return { kind: "args", values: values as ArgValues<S>, positionals: named as ArgPositionals<S> };
}

function checkSpec(spec: ArgSpec): void {
  const seen = new Set<string>(["help", "h"]);
  for (const o of spec.options) {
    for (const n of [o.name, o.short].filter((n): n is string => n !== undefined)) {
      if (seen.has(n)) throw new Error(`argument spec: option name "${n}" is used twice (or clashes with -h/--help)`);
      seen.add(n);
    }
    if (o.short !== undefined && o.short.length !== 1) throw new Error(`argument spec: short name of --${o.name} must be one letter, got "${o.short}"`);
    if (o.default !== undefined && typeof o.default !== o.type) throw new Error(`argument spec: default of --${o.name} must be a ${o.type}, got ${JSON.stringify(o.default)}`);
  }
  const ps = spec.positionals ?? [];
  const firstOptional = ps.findIndex((p) => p.optional);
  if (firstOptional >= 0 && ps.slice(firstOptional).some((p) => !p.optional)) throw new Error("argument spec: required positionals must come before optional ones");
  if (ps.slice(0, -1).some((p) => p.rest)) throw new Error("argument spec: only the last positional may take the rest");
}

function parseNumber(text: string, what: string): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v)) throw new InputError(`${what} expects a number, got "${text}"`);
  return v;
}

const flagName = (o: OptionSpec) => (o.short ? `-${o.short}/--${o.name}` : `--${o.name}`);

function unknownOption(key: string, options: readonly OptionSpec[]): string {
  const bare = key.replace(/^-+/, "");
  const dist = options.map((o) => editDistance(bare, o.name));
  const best = Math.min(2, ...dist);
  const close = options.filter((_, i) => dist[i] === best).map((o) => `--${o.name}`);
  const hint = close.length > 0 ? ` (did you mean ${close.join(" or ")}?)` : "";
  return `unknown option ${key}${hint}; valid options: ${[...options.map(flagName), "-h/--help"].join(", ")}`;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

function usageLine(spec: ArgSpec): string {
  const ps = (spec.positionals ?? []).map((p) => (p.optional ? `[${p.name}${p.rest ? "..." : ""}]` : `<${p.name}${p.rest ? "..." : ""}>`));
  return [spec.usage ?? "", ...ps, "[options]"].filter(Boolean).join(" ");
}

/** The `--help` text: usage, description, arguments and options with defaults. */
export function formatHelp(spec: ArgSpec): string {
  const rows = (pairs: [string, string][]) => {
    const width = Math.max(...pairs.map(([l]) => l.length)) + 2;
    return pairs.map(([l, r]) => `  ${l.padEnd(width)}${r}`);
  };
  const lines = [`Usage: ${usageLine(spec)}`];
  if (spec.description) lines.push("", spec.description);
  const ps = spec.positionals ?? [];
  if (ps.length > 0) lines.push("", "Arguments:", ...rows(ps.map((p) => [p.optional ? `[${p.name}]` : `<${p.name}>`, p.help])));
  const opts: [string, string][] = spec.options.map((o) => {
    const left = `${o.short ? `-${o.short}, ` : "    "}--${o.name}${o.type === "boolean" ? "" : ` <${o.placeholder ?? o.type}>`}`;
    const notes = [o.required ? "required" : "", o.default !== undefined ? `default: ${o.default}` : "", o.multiple ? "repeatable" : ""].filter(Boolean);
    return [left, `${o.help}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}`];
  });
  opts.push(["-h, --help", "show this help"]);
  lines.push("", "Options:", ...rows(opts));
  return lines.join("\n");
}

// ---- config overrides: --set model.layers=4 ----

const isPlainObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * A copy of `config` with the value at a dotted path replaced (`config` itself is not changed,
 * so presets stay intact). The path must exist, and the new value must have the old one's type;
 * string values (from the command line) are converted: "4" → 4, "true" → true, "[1,2]" → [1, 2].
 */
export function setByDottedPath<T extends object>(config: T, path: string, value: unknown): T {
  const keys = path.split(".");
  const set = (node: unknown, depth: number): unknown => {
    const key = keys[depth];
    const here = keys.slice(0, depth).join(".");
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) {
      const valid = isPlainObject(node) ? Object.keys(node).join(", ") : "(none)";
      throw new InputError(`unknown config key "${path}": valid keys ${here ? `under "${here}"` : "at the top level"} are ${valid}`);
    }
    const next = depth === keys.length - 1 ? coerce(path, node[key], value) : set(node[key], depth + 1);
    return { ...node, [key]: next };
  };
  return set(config, 0) as T;
}

function coerce(path: string, old: unknown, value: unknown): unknown {
  if (isPlainObject(old)) {
    // A whole section may be replaced by a JSON object (e.g. a quantizer spec); the config's own
    // checks then validate it.
    let parsed: unknown = value;
    if (typeof value === "string") {
      try {
        parsed = JSON.parse(value);
      } catch {
        parsed = undefined;
      }
    }
    if (isPlainObject(parsed)) return parsed;
    throw new InputError(`config key "${path}" is a section; set one of its keys (${Object.keys(old).join(", ")}) or give a JSON object`);
  }
  const mismatch = () => new InputError(`config key "${path}" is a ${Array.isArray(old) ? "list" : typeof old} (now ${JSON.stringify(old)}), got ${JSON.stringify(value)}`);
  if (typeof value === "string" && typeof old !== "string") {
    if (typeof old === "number") {
      const v = Number(value);
      if (value.trim() === "" || !Number.isFinite(v)) throw mismatch();
      return v;
    }
    if (typeof old === "boolean") {
      if (value !== "true" && value !== "false") throw mismatch();
      return value === "true";
    }
    try {
      value = JSON.parse(value);
    } catch {
      if (old !== null) throw mismatch();
    }
  }
  if (old === null) return value;
  if (Array.isArray(old)) {
    if (!Array.isArray(value)) throw mismatch();
    const elem = old.length > 0 ? typeof old[0] : undefined;
    if (elem !== undefined && value.some((v) => typeof v !== elem)) throw mismatch();
    return value;
  }
  if (typeof value !== typeof old) throw mismatch();
  return value;
}

/** Apply `key=value` assignments (as given to `--set`) in order; see `setByDottedPath`. */
export function applyOverrides<T extends object>(config: T, assignments: readonly string[]): T {
  return assignments.reduce((cfg, a) => {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new InputError(`--set expects key=value (e.g. model.layers=4), got "${a}"`);
    return setByDottedPath(cfg, a.slice(0, eq), a.slice(eq + 1));
  }, config);
}
