/**
 * Image files ↔ token files with a trained tokenizer (`mmntp tokenizer encode | decode`).
 * A token file `<name>.tokens.json` holds one image's ids, row by row over its grid, with the
 * grid's shape and the codebook size, so a file made by another tokenizer is refused by name.
 * Every input is read and checked before the first output is written.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { readImageFile } from "../data/image-folder.ts";
import { writeAtomic } from "../io/checkpoint.ts";
import { InputError, parseJson } from "../io/errors.ts";
import { writeGrayGrid } from "../io/png.ts";
import { loadImageTokenizer } from "./tokenizer-run.ts";

export const TOKENS_FORMAT = "mmntp-image-tokens";

export type TokenFile = { format: typeof TOKENS_FORMAT; shape: number[]; codebookSize: number; ids: number[] };

const stem = (f: string, ext: RegExp) => basename(f).replace(ext, "");

/** Encode PNG/JPEG `files` with the tokenizer of `run` into `out`/<name>.tokens.json; returns the files written. */
export async function encodeImageFiles(run: string, files: readonly string[], out: string): Promise<string[]> {
  const tok = loadImageTokenizer(run);
  try {
    const { height, width } = tok.config;
    const channels = tok.config.imageChannels ?? 1;
    const images: Float32Array[] = [];
    for (const f of files) images.push(await readImageFile(f, { height, width, channels }));
    const ids = await tok.encode(images.map((data) => ({ data, channels, height, width })));
    mkdirSync(out, { recursive: true });
    return files.map((f, i) => {
      const file = join(out, `${stem(f, /\.(png|jpe?g)$/i)}.tokens.json`);
      const body: TokenFile = { format: TOKENS_FORMAT, shape: [...tok.tokenShape], codebookSize: tok.codebookSize, ids: Array.from(ids[i]!.ids) };
      writeAtomic(file, `${JSON.stringify(body)}\n`);
      return file;
    });
  } finally {
    tok.dispose();
  }
}

function readTokenFile(file: string, shape: readonly number[], codebookSize: number): Int32Array {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new InputError(`${file} could not be read: ${(e as Error).message}`, { file, cause: e });
  }
  const t = parseJson(text, file) as Partial<TokenFile> | null;
  if (typeof t !== "object" || t === null || t.format !== TOKENS_FORMAT) throw new InputError(`${file}: not a token file (format ${JSON.stringify(t?.format)}, expected "${TOKENS_FORMAT}")`, { file, field: "format" });
  if (JSON.stringify(t.shape) !== JSON.stringify(shape) || t.codebookSize !== codebookSize) {
    throw new InputError(`${file}: tokens of a ${JSON.stringify(t.shape)} grid of ${t.codebookSize} codes; this tokenizer makes ${JSON.stringify(shape)} grids of ${codebookSize} codes`, { file });
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (!Array.isArray(t.ids) || t.ids.length !== n) throw new InputError(`${file}: expected ${n} ids, got ${Array.isArray(t.ids) ? t.ids.length : JSON.stringify(t.ids)}`, { file, field: "ids" });
  const bad = t.ids.findIndex((v) => !Number.isInteger(v) || v < 0 || v >= codebookSize);
  if (bad >= 0) throw new InputError(`${file}: id ${JSON.stringify(t.ids[bad])} at position ${bad} is not an integer in [0, ${codebookSize})`, { file, field: "ids", value: t.ids[bad] });
  return Int32Array.from(t.ids);
}

/** Decode token `files` with the tokenizer of `run` into `out`/<name>.png; returns the files written. */
export async function decodeTokenFiles(run: string, files: readonly string[], out: string): Promise<string[]> {
  const tok = loadImageTokenizer(run);
  try {
    const ids = files.map((f) => readTokenFile(f, tok.tokenShape, tok.codebookSize));
    const images = await tok.decode(ids);
    mkdirSync(out, { recursive: true });
    return files.map((f, i) => {
      const file = join(out, `${stem(f, /\.tokens\.json$/i)}.png`);
      const im = images[i]!;
      writeGrayGrid(file, im.data, { height: im.height, width: im.width, channels: im.channels as 1 | 3, count: 1, pad: 0, scale: 1 });
      return file;
    });
  } finally {
    tok.dispose();
  }
}
