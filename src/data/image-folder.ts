/**
 * Users' own pictures: a folder of PNG/JPEG files, decoded and resized by `sharp` (libvips)
 * into an ImageSet at a tokenizer's size. Subfolders are classes (labels in sorted-name order,
 * as torchvision's ImageFolder); files directly in the folder get label 0. Grayscale files
 * (1 channel, or 2 with alpha) feed 1-channel tokenizers, colour files (3, or 4 with alpha) feed
 * 3-channel ones; a mismatch is an error naming the file, never a silent conversion.
 */
import { readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { InputError } from "../io/errors.ts";
import type { ImageSet } from "./types.ts";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"] as const;
/** Largest file read (a 12-megapixel JPEG is ~5 MB). */
export const MAX_IMAGE_BYTES = 64 * 2 ** 20;

export type ImageFolderOptions = {
  readonly height: number;
  readonly width: number;
  /** 1 (grayscale) or 3 (RGB): the channels of the tokenizer the images are for. */
  readonly channels: number;
  /** At most this many files (the first in sorted order); default all. */
  readonly limit?: number;
};

/** The image files under `dir` with their labels (the subfolder's index among the classes). */
export function listImageFolder(dir: string): { files: string[]; labels: number[]; classes: string[] } {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new InputError(`no such folder: ${dir}`, { file: dir });
  }
  if (!st.isDirectory()) throw new InputError(`${dir} is not a folder; expected a folder of PNG/JPEG files`, { file: dir });
  const isImage = (f: string) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase() as (typeof IMAGE_EXTENSIONS)[number]);
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name);
  const files: string[] = [];
  const labels: number[] = [];
  for (const e of entries) if (e.isFile() && isImage(e.name)) (files.push(join(dir, e.name)), labels.push(0));
  classes.forEach((c, k) => {
    for (const f of readdirSync(join(dir, c)).sort()) {
      if (isImage(f) && statSync(join(dir, c, f)).isFile()) (files.push(join(dir, c, f)), labels.push(k));
    }
  });
  if (files.length === 0) throw new InputError(`${dir} holds no ${IMAGE_EXTENSIONS.join("/")} files (directly or one subfolder down)`, { file: dir });
  return { files, labels, classes };
}

/**
 * One PNG/JPEG file as [C, H, W] in [0, 1], resized (stretched) to height × width. Throws an
 * InputError naming the file when it is not a readable image, or not of `channels` channels.
 */
export async function readImageFile(file: string, { height, width, channels }: Omit<ImageFolderOptions, "limit">): Promise<Float32Array> {
  const { default: sharp } = await import("sharp");
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new InputError(`no such image file: ${file}`, { file });
  }
  if (size > MAX_IMAGE_BYTES) throw new InputError(`${file} is ${size} bytes, more than the ${MAX_IMAGE_BYTES} an image may take`, { file, value: size });
  let raw: { data: Buffer; info: { channels: number } } | undefined;
  let fileChannels: number;
  try {
    // failOn "truncated": a cut-off JPEG/PNG is an error, not a picture with a grey bottom.
    const image = sharp(file, { failOn: "truncated" });
    fileChannels = (await image.metadata()).channels ?? 0;
    // The file's own channels decide (libvips may widen a grayscale image to sRGB while resizing).
    if ((fileChannels >= 3 ? 3 : 1) === channels) {
      const sized = image.removeAlpha().resize(width, height, { fit: "fill" });
      raw = await (channels === 1 ? sized.greyscale() : sized.toColourspace("srgb")).raw().toBuffer({ resolveWithObject: true });
    }
  } catch (e) {
    throw new InputError(`${file} is not a readable PNG/JPEG image: ${(e as Error).message}`, { file, cause: e });
  }
  if (!raw) {
    const kind = (c: number) => (c === 1 ? "grayscale (1 channel)" : `colour (${c} channels)`);
    const has = fileChannels >= 3 ? 3 : 1;
    throw new InputError(`${file} is ${kind(has)}${fileChannels !== has ? ` (${fileChannels} with alpha)` : ""}; the tokenizer takes ${kind(channels)} images`, { file, value: has, expected: `${channels} channels` });
  }
  if (raw.info.channels !== channels) throw new Error(`readImageFile: ${file} decoded to ${raw.info.channels} channels, expected ${channels}`);
  const plane = height * width;
  const out = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < channels; c++) out[c * plane + i] = raw.data[i * channels + c]! / 255;
  return out;
}

/** Every image under `dir` (see `listImageFolder`) at the given size: an ImageSet, its files and classes. */
export async function readImageFolder(dir: string, opts: ImageFolderOptions): Promise<ImageSet & { files: string[]; classes: string[] }> {
  const listed = listImageFolder(dir);
  const files = opts.limit === undefined ? listed.files : listed.files.slice(0, opts.limit);
  const px = opts.channels * opts.height * opts.width;
  const images = new Float32Array(files.length * px);
  for (const [i, f] of files.entries()) images.set(await readImageFile(f, opts), i * px);
  return { images, labels: Int32Array.from(listed.labels.slice(0, files.length)), n: files.length, height: opts.height, width: opts.width, channels: opts.channels, files, classes: listed.classes };
}
