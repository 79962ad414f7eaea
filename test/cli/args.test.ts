import { describe, expect, expectTypeOf, it } from "vitest";
import { applyOverrides, parseArgs, setByDottedPath } from "../../src/cli/args.ts";

const spec = {
  usage: "mmntp generate",
  description: "Writes a grid of images generated from the prompt.",
  positionals: [
    { name: "prompt", help: "caption to draw" },
    { name: "extra", help: "optional note", optional: true },
  ],
  options: [
    { name: "out", short: "o", type: "string", required: true, help: "PNG to write", placeholder: "path" },
    { name: "count", type: "number", default: 8, help: "images to generate" },
    { name: "temperature", type: "number", help: "sampling temperature" },
    { name: "quick", type: "boolean", help: "shorter run" },
    { name: "set", type: "string", multiple: true, help: "config override key=value" },
  ],
} as const;

const args = (argv: string[]) => {
  const r = parseArgs(argv, spec);
  if (r.kind !== "args") throw new Error("expected args, got help");
  return r;
};

describe("parseArgs", () => {
  it("parses every form into typed values with defaults", () => {
    const r = args(["a handwritten 7", "-o", "out.png", "--count=4", "--temperature", "-0.5", "--quick", "--set", "model.layers=4", "--set=train.lr=0.1"]);
    expect(r.values).toEqual({ out: "out.png", count: 4, temperature: -0.5, quick: true, set: ["model.layers=4", "train.lr=0.1"] });
    expect(r.positionals).toEqual({ prompt: "a handwritten 7", extra: undefined });
    expectTypeOf(r.values.count).toEqualTypeOf<number>();
    expectTypeOf(r.values.temperature).toEqualTypeOf<number | undefined>();
    expectTypeOf(r.values.out).toEqualTypeOf<string>();
    expectTypeOf(r.values.quick).toEqualTypeOf<boolean>();
    expectTypeOf(r.values.set).toEqualTypeOf<string[]>();
    expectTypeOf(r.positionals.prompt).toEqualTypeOf<string>();
    expectTypeOf(r.positionals.extra).toEqualTypeOf<string | undefined>();
  });

  it("fills defaults, supports --no-flag and `--`", () => {
    const r = args(["--out", "x.png", "--no-quick", "--", "--not-an-option", "-3"]);
    expect(r.values).toEqual({ out: "x.png", count: 8, temperature: undefined, quick: false, set: [] });
    expect(r.positionals).toEqual({ prompt: "--not-an-option", extra: "-3" });
  });

  it("-h/--help returns the formatted help text", () => {
    const r = parseArgs(["x", "--help"], spec);
    expect(r).toEqual(parseArgs(["-h"], spec));
    expect(r.kind === "help" && r.text).toBe(
      [
        "Usage: mmntp generate <prompt> [extra] [options]",
        "",
        "Writes a grid of images generated from the prompt.",
        "",
        "Arguments:",
        "  <prompt>  caption to draw",
        "  [extra]   optional note",
        "",
        "Options:",
        "  -o, --out <path>            PNG to write (required)",
        "      --count <number>        images to generate (default: 8)",
        "      --temperature <number>  sampling temperature",
        "      --quick                 shorter run",
        "      --set <string>          config override key=value (repeatable)",
        "  -h, --help                  show this help",
      ].join("\n"),
    );
  });

  it("rejects unknown options, listing the valid ones", () => {
    expect(() => args(["p", "-o", "x", "--cont", "3"])).toThrow(
      "unknown option --cont (did you mean --count?); valid options: -o/--out, --count, --temperature, --quick, --set, -h/--help",
    );
    expect(() => args(["p", "-x"])).toThrow(/^unknown option -x; valid options: /);
  });

  it("rejects bad numbers, naming the option and the value", () => {
    expect(() => args(["p", "-o", "x", "--count", "eight"])).toThrow('--count expects a number, got "eight"');
    expect(() => args(["p", "-o", "x", "--temperature="])).toThrow('--temperature expects a number, got ""');
  });

  it("rejects missing values, required options and positionals, and extra arguments", () => {
    expect(() => args(["p", "-o"])).toThrow("-o expects a string value");
    expect(() => args(["p"])).toThrow("missing required option --out (PNG to write)");
    expect(() => args(["-o", "x"])).toThrow("missing argument <prompt> (caption to draw); usage: mmntp generate <prompt> [extra] [options]");
    expect(() => args(["a", "b", "c", "-o", "x"])).toThrow('unexpected argument "c"; usage: mmntp generate <prompt> [extra] [options]');
    expect(() => args(["p", "-o", "x", "--quick=yes"])).toThrow("--quick is a flag");
  });

  it("a rest positional takes every remaining argument, and requires one unless optional", () => {
    const rest = { usage: "mmntp caption", positionals: [{ name: "images", help: "PNG files", rest: true }], options: [{ name: "run", type: "string", default: "runs/demo", help: "run" }] } as const;
    const r = parseArgs(["a.png", "--run", "r", "b.png", "--", "-c.png"], rest);
    expect(r.kind === "args" && r.positionals.images).toEqual(["a.png", "b.png", "-c.png"]);
    expect(r.kind === "args" && r.values.run).toBe("r");
    expect(() => parseArgs(["--run", "r"], rest)).toThrow("missing argument <images...> (PNG files); usage: mmntp caption <images...> [options]");
    expect(() => parseArgs([], { options: [], positionals: [{ name: "a", help: "", rest: true }, { name: "b", help: "" }] })).toThrow("only the last positional may take the rest");
  });

  it("rejects a broken spec", () => {
    expect(() => parseArgs([], { options: [{ name: "help", type: "boolean", help: "" }] })).toThrow('option name "help" is used twice');
    expect(() => parseArgs([], { options: [{ name: "n", type: "number", default: "8", help: "" }] })).toThrow("default of --n must be a number");
  });
});

describe("setByDottedPath / applyOverrides", () => {
  const preset = Object.freeze({
    model: Object.freeze({ layers: 2, dim: 64, mlp: "gelu", tied: false, widths: [1, 2] }),
    train: Object.freeze({ lr: 3e-4 }),
  });

  it("returns a copy with the value converted to the existing type; the preset is untouched", () => {
    const cfg = applyOverrides(preset, ["model.layers=4", "model.mlp=swiglu", "model.tied=true", "model.widths=[4,8,16]", "train.lr=1e-3"]);
    expect(cfg).toEqual({ model: { layers: 4, dim: 64, mlp: "swiglu", tied: true, widths: [4, 8, 16] }, train: { lr: 1e-3 } });
    expect(preset.model.layers).toBe(2);
    expect(setByDottedPath(preset, "model.dim", 128).model.dim).toBe(128);
    expectTypeOf(cfg).toEqualTypeOf(preset);
  });

  it("names the valid keys at the level where the path goes wrong", () => {
    expect(() => setByDottedPath(preset, "model.layrs", "4")).toThrow('unknown config key "model.layrs": valid keys under "model" are layers, dim, mlp, tied, widths');
    expect(() => setByDottedPath(preset, "modle.layers", "4")).toThrow('unknown config key "modle.layers": valid keys at the top level are model, train');
    expect(() => setByDottedPath(preset, "model.layers.x", "4")).toThrow('unknown config key "model.layers.x": valid keys under "model.layers" are (none)');
  });

  it("rejects values of the wrong type and whole sections", () => {
    expect(() => setByDottedPath(preset, "model.layers", "four")).toThrow('config key "model.layers" is a number (now 2), got "four"');
    expect(() => setByDottedPath(preset, "model.tied", "yes")).toThrow('config key "model.tied" is a boolean (now false), got "yes"');
    expect(() => setByDottedPath(preset, "model.widths", "[1,\"a\"]")).toThrow('config key "model.widths" is a list (now [1,2])');
    expect(() => setByDottedPath(preset, "model.mlp", 3)).toThrow('config key "model.mlp" is a string (now "gelu"), got 3');
    expect(() => setByDottedPath(preset, "model", "4")).toThrow('config key "model" is a section; set one of its keys (layers, dim, mlp, tied, widths) or give a JSON object');
    expect(setByDottedPath(preset, "model", '{"layers":1}').model).toEqual({ layers: 1 }); // checked later by the config's own schema
    expect(() => applyOverrides(preset, ["model.layers"])).toThrow('--set expects key=value (e.g. model.layers=4), got "model.layers"');
  });
});
