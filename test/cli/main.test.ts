import { describe, expect, it } from "vitest";
import { describeFailure, INTERNAL_ERROR_EXIT } from "../../src/cli/failure.ts";
import { InputError } from "../../src/io/errors.ts";
import { inProcess, mmntp } from "../helpers/cli.ts";

describe("mmntp CLI", () => {
  it("the entry prints help with exit 0, and bad input as its message with exit 1", () => {
    const top = mmntp(["--help"]);
    expect(top.code).toBe(0);
    expect(top.out).toContain("Usage: mmntp <command>");
    const bad = mmntp(["generate", "a handwritten 7", "-o", "x.png", "--count", "0"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("mmntp: --count must be an integer in [1, 256], got 0");
    expect(bad.err).not.toContain("internal error");
  });

  it("lists every command in --help, and each command has its own --help", async () => {
    const top = await inProcess("--help");
    expect(top.code).toBe(0);
    for (const c of ["demo", "train", "caption", "generate", "experiment", "evaluate", "export", "import", "codec", "speech", "asr", "tts", "dialogue"]) {
      expect(top.out).toContain(`  ${c}`);
      const sub = await inProcess(c, "--help");
      expect(sub.code).toBe(0);
      expect(sub.out).toContain(`Usage: mmntp ${c}`);
    }
  });

  it.each([
    [["fit"], 'unknown command "fit"; expected one of: demo, train, caption, generate, experiment, evaluate, export, import, tokenizer, codec, speech, asr, tts, dialogue'],
    [["export", "runs/does-not-exist"], "missing required option --out"],
    [["export", "runs/does-not-exist", "-o", "x", "--format", "onnx"], '--format must be torch, got "onnx"'],
    [["export", "runs/does-not-exist", "-o", "x"], "no run at runs/does-not-exist"],
    [["import", "ckpt", "--run", "runs/does-not-exist", "-o", "x"], "no run at runs/does-not-exist"],
    [["import", "-o", "x"], "missing argument <checkpoint>"],
    [["evaluate", "--run", "runs/does-not-exist"], "no run at runs/does-not-exist"],
    [["demo", "--set", "model.layer=3"], 'unknown config key "model.layer": valid keys under "model" are contextLength'],
    [["demo", "--set", "modelSteps=abc"], 'config key "modelSteps" is a number (now'],
    [["demo", "--quik"], "unknown option --quik (did you mean --quick?)"],
    [["generate", "a handwritten 7"], "missing required option --out"],
    [["generate", "a handwritten 7", "-o", "x.png", "--run", "runs/does-not-exist"], "no run at runs/does-not-exist; run `mmntp demo` first"],
    [["caption", "--run", "runs/does-not-exist"], "missing argument <images...>"],
    [["caption", "nope.png"], "no such file or folder: nope.png"],
    [["generate", "a handwritten 7", "-o", "x.png", "--count", "0"], "--count must be an integer in [1, 256], got 0"],
    [["generate", "a handwritten 7", "-o", "x.png", "--seed", "4294967296"], "--seed must be an integer in [0, 4294967295], got 4294967296"],
    [["generate", "a handwritten 7", "-o", "x.png", "--seed", "-1"], "--seed must be an integer in [0, 4294967295], got -1"],
    [["generate", "a handwritten 7", "-o", "x.png", "--temperature", "-1"], "--temperature must be in [0, 10] (0 = greedy), got -1"],
    [["generate", "a handwritten 7", "-o", "/dev/null"], "/dev/null exists and is not a regular file"],
    [["generate", "a handwritten 7", "-o", "no-such-folder/x.png"], "cannot write no-such-folder/x.png: the folder no-such-folder does not exist"],
    [["demo", "--set", "model.heads=5"], "demo config: model.dim: 96 is not divisible by heads (5)"],
    [["experiment", "tokenizer-objectives", "--only", "clip"], 'tokenizer-objectives: unknown objective "clip"; expected some of autoencode, masked, supervised, contrastive'],
    [["tokenizer", "train", "--set", 'train.objective={"kind":"masked","ratio":1.5,"patch":4}'], "tokenizer run config.train.objective.ratio: expected a number in (0, 1), got 1.5"],
    [["experiment"], "missing argument <experiment> (which experiment: quantizers, orders, token-efficiency, tokenizer-objectives)"],
    [["experiment", "tokenizers"], 'unknown experiment "tokenizers"; expected one of: quantizers, orders'],
    [["experiment", "quantizers", "--only", "vq,fsk"], 'unknown quantizer "fsk" in --only; valid: vq, vq-kmeans, vq-ema'],
    [["experiment", "quantizers", "--steps", "0"], "quantizer experiment: steps must be a positive integer, got 0"],
    [["experiment", "quantizers", "--steps", "many"], '--steps expects a number, got "many"'],
    [["experiment", "quantizers", "--seed", "1.5"], "quantizer experiment: seed must be an integer, got 1.5"],
    [["experiment", "quantizers", "--stepz", "10"], "unknown option --stepz (did you mean --steps?)"],
    [["experiment", "orders", "--only", "raster,zigzag"], 'unknown order "zigzag"; expected a comma-separated list of: raster, maskgit, random, next-scale'],
    [["experiment", "orders", "--steps", "0"], "orders experiment: steps must be an integer in [1, 10000000], got 0"],
    [["generate", "a handwritten 7", "-o", "x.png", "--top-p", "0"], "--top-p must be in (0, 1] (1 = all tokens), got 0"],
    [["generate", "a handwritten 7", "-o", "x.png", "--guidance-schedule", "cubic"], '--guidance-schedule must be one of constant, linear, got "cubic"'],
    [["generate", "a handwritten 7", "-o", "x.png", "--order", "zigzag"], '--order must be one of raster, maskgit, random, next-scale, got "zigzag"'],
    [["generate", "a handwritten 7", "-o", "x.png", "--preview", "/dev/null"], "/dev/null exists and is not a folder; give a folder to write into"],
    [["asr"], "missing argument <files...> (WAV files)"],
    [["asr", "nope.wav"], "no such WAV file: nope.wav"],
    [["asr", "package.json", "--run", "runs/does-not-exist"], "runs/does-not-exist is not a speech run: runs/does-not-exist/speech.json is missing (make one with `mmntp speech train -o runs/does-not-exist`)"],
    [["tts", "seven"], "missing required option --out"],
    [["tts", "seven", "-o", "seven.mp3"], "--out must name a .wav file, got seven.mp3"],
    [["tts", "seven", "-o", "x.wav", "--count", "0"], "--count must be an integer in [1, 64], got 0"],
    [["tokenizer", "fit"], 'unknown tokenizer action "fit"; expected one of: train, eval, encode, decode'],
    [["tokenizer", "train", "--preset", "cifar"], 'unknown tokenizer preset "cifar"; expected one of: mnist, shapes'],
    [["tokenizer", "train", "--set", "train.lr=2"], "tokenizer run config.train.lr: expected a number in (0, 1), got 2"],
    [["tokenizer", "train", "--set", "tokenizer.quantizer.name=fsq"], "tokenizer run config.tokenizer.quantizer"],
    [["tokenizer", "train", "--resume", "--steps", "5"], "--resume continues the run with its own config and data; drop --set, --steps and --data"],
    [["tokenizer", "eval", "--run", "runs/does-not-exist"], "runs/does-not-exist is not a tokenizer run: runs/does-not-exist/run.json is missing"],
    [["tokenizer", "encode", "none.png", "--run", "runs/does-not-exist", "-o", "x"], "no tokenizer run at runs/does-not-exist (make one with `mmntp tokenizer train -o runs/does-not-exist`)"],
    [["speech", "fit"], 'unknown speech action "fit"; expected one of: train, eval'],
    [["speech", "train", "--set", "levels=0"], "--set: levels must be an integer ≥ 1, got 0"],
    [["speech", "train", "--set", "model.positions=rope2d"], '--set: model.positions must be "learned" or "rope"'],
    [["speech", "train", "--set", "concat=1"], "--set: concat must be a number in [0, 1), got 1"],
    [["speech", "train", "--set", "voicePrompt=-1"], "--set: voicePrompt must be an integer ≥ 0 (frames; 0 = off), got -1"],
    [["dialogue", "talk"], 'unknown dialogue action "talk"; expected one of: train, reply'],
    [["dialogue", "train", "--set", "gapFrames=200"], "--set: gapFrames (200) must be less than replyFrames (95)"],
    [["dialogue", "reply", "none.wav", "-o", "x.wav"], "no such WAV file: none.wav"],
    [["dialogue", "reply", "package.json", "-o", "x.wav", "--run", "runs/does-not-exist"], "runs/does-not-exist is not a dialogue run: runs/does-not-exist/dialogue.json is missing"],
  ])("fails clearly on %j", async (args, message) => {
    const r = await inProcess(...args);
    expect(r.code).toBe(1);
    expect(r.err).toContain(message);
    expect(r.err).not.toContain("internal error"); // each is an InputError, not a bug
  });
});

describe("how a failure is reported", () => {
  it("bad input and system refusals: the message, exit 1; anything else: an internal error with its stack, exit 70", () => {
    expect(describeFailure(new InputError("model.json: layers: expected an integer in [1, 1024], got 1000000000"))).toEqual({ text: "mmntp: model.json: layers: expected an integer in [1, 1024], got 1000000000", exitCode: 1 });
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    expect(describeFailure(full)).toEqual({ text: "mmntp: ENOSPC: no space left on device, write", exitCode: 1 });
    const bug = describeFailure(new TypeError("Cannot read properties of null (reading 'dim')"));
    expect(bug.exitCode).toBe(INTERNAL_ERROR_EXIT);
    expect(bug.text).toMatch(/^mmntp: internal error \(a bug in mmntp, not a problem with your input; please report it with what follows\):\nTypeError: Cannot read properties of null \(reading 'dim'\)\n {4}at /);
    expect(describeFailure(new Error("plain")).exitCode).toBe(INTERNAL_ERROR_EXIT); // only InputError is "bad input"
  });
});
