/**
 * Document builders for the public sequence conventions, and for this repository's paired
 * caption/image layout. Each returns a `SequenceDocument` for `compileSequence`; token names are
 * options whose defaults are the published ones where a release fixes them, and a modality's own
 * markers come from the vocabulary. Ids are text-tokenizer ids / the modality's local codes.
 * Leaving an image's codes (or a final text) out makes it a hole: the compiled ids up to
 * `promptLength` are then the generation prompt.
 */
import { product } from "./checks.ts";
import type { BlockSegment, Segment, SequenceDocument, TextSegment } from "./document.ts";

const text = (ids: readonly number[], loss?: number): TextSegment[] => (ids.length === 0 ? [] : [{ kind: "text", ids, ...(loss !== undefined && { loss }) }]);
const special = (name: string): Segment => ({ kind: "special", name });
const withLoss = (loss: number | undefined) => (loss === undefined ? {} : { loss });

/** A text part of an interleaved document is its ids; an image part its codes (absent = generate). */
export type InterleavedPart = readonly number[] | { readonly image?: readonly number[] };
const isText = (p: InterleavedPart): p is readonly number[] => Array.isArray(p);

export type ChameleonOptions = {
  /** image grid [H, W] (Chameleon: 32×32 = 1024 tokens of a 512×512 image) */
  readonly shape?: readonly number[];
  readonly modality?: string;
  readonly bos?: string;
  /** appended after the last part when given */
  readonly eos?: string;
  /** total loss weight of each text part and each image (default none) */
  readonly loss?: { readonly text?: number; readonly image?: number };
};

/**
 * Chameleon (Chameleon Team 2024, "Chameleon: Mixed-Modal Early-Fusion Foundation Models", §2.1):
 * images are 1024 VQ codes placed inside the text stream between the image begin/end markers
 * (Hugging Face's ChameleonProcessor: "<racm3:break>" … "<eoss>"), any number of times, in any
 * order: `<bos> text <boi> codes <eoi> text …`.
 */
export function chameleonDocument(parts: readonly InterleavedPart[], opts: ChameleonOptions = {}): SequenceDocument {
  const { shape = [32, 32], modality = "image", bos = "<bos>", eos, loss = {} } = opts;
  const segments: Segment[] = [special(bos)];
  for (const p of parts) {
    if (isText(p)) segments.push(...text(p, loss.text));
    else segments.push({ kind: "block", modality, shape, ...(p.image !== undefined && { ids: p.image }), ...withLoss(loss.image) });
  }
  if (eos !== undefined) segments.push(special(eos));
  return { segments };
}

export type Emu3Options = {
  readonly modality?: string;
  readonly bos?: string;
  readonly eos?: string;
  /** start of vision, before the meta text; the modality's begin marker is Emu3's [SOT] */
  readonly startOfVision?: string;
  readonly loss?: { readonly caption?: number; readonly image?: number };
};

/**
 * Emu3 (Wang et al. 2024, "Emu3: Next-Token Prediction is All You Need", §2.2, data format):
 * `[BOS] caption [SOV] meta [SOT] vision [EOV] [EOS]`, the meta text giving the resolution, and
 * an [EOL] line break after each row of vision tokens, so H·(W+1) tokens lie between [SOT] and
 * [EOV]. Here [SOT]/[EOV]/[EOL] are the vision modality's begin/end/lineBreak; [SOV] is a plain
 * special. (Emu3's [EOF] frame breaks, for video, are not built.)
 */
export function emu3Document(caption: readonly number[], meta: readonly number[], image: { readonly shape: readonly number[]; readonly ids?: readonly number[] }, opts: Emu3Options = {}): SequenceDocument {
  const { modality = "image", bos = "<bos>", eos = "<eos>", startOfVision = "[SOV]", loss = {} } = opts;
  if (image.shape.length !== 2) throw new Error(`emu3Document: an image is a 2-D grid [H, W], got shape [${image.shape.join(", ")}]`);
  const block: BlockSegment = { kind: "block", modality, shape: image.shape, rowBreaks: true, ...(image.ids !== undefined && { ids: image.ids }), ...withLoss(loss.image) };
  return { segments: [special(bos), ...text(caption, loss.caption), special(startOfVision), ...text(meta), block, special(eos)] };
}

export type LlavaOptions = {
  /** continuous slots per image (LLaVA-1.5: 576 = 24×24 CLIP ViT-L/14 patches at 336 px) */
  readonly slots?: number;
  readonly token?: string;
  readonly name?: string;
  readonly bos?: string;
  readonly eos?: string;
  /** total loss weight of the answer and its end token (LLaVA trains on the answer only) */
  readonly answerLoss?: number;
};

/**
 * LLaVA (Liu et al. 2023, "Visual Instruction Tuning", §4; LLaVA-1.5, Liu et al. 2024,
 * "Improved Baselines with Visual Instruction Tuning"): one `<image>` token in the prompt is
 * expanded to N slots that the projected vision features fill (Hugging Face's LlavaProcessor
 * repeats the token N times): `<bos> before <image>×N after answer <eos>`, the loss on the answer
 * only (eq. 3). `answer` as `{ maxLength }` makes it a generated text.
 */
export function llavaDocument(before: readonly number[], after: readonly number[], answer: readonly number[] | { readonly maxLength: number }, opts: LlavaOptions = {}): SequenceDocument {
  const { slots = 576, token = "<image>", name = "image", bos = "<bos>", eos = "<eos>", answerLoss = 1 } = opts;
  const reply: TextSegment = "maxLength" in answer ? { kind: "text", maxLength: answer.maxLength, end: eos } : { kind: "text", ids: answer, end: eos, loss: answerLoss };
  return { segments: [special(bos), ...text(before), { kind: "placeholder", name, slots, token }, ...text(after), reply] };
}

export type JanusOptions = {
  /** the generation tokenizer's fixed grid (Janus: 384 px / 16 = 24×24 = 576 codes) */
  readonly shape?: readonly number[];
  readonly modality?: string;
  readonly bos?: string;
  readonly loss?: number;
};

/**
 * Janus (Wu et al. 2024, "Janus: Decoupling Visual Encoding for Unified Multimodal Understanding
 * and Generation", §3): text-to-image with a VQ tokenizer whose images are always 576 codes,
 * between `<begin_of_image>` and `<end_of_image>` (the vocabulary's image markers). The builder
 * checks the length, since the decoder stops after exactly that many codes. (Janus reads images
 * for understanding through a separate continuous encoder: a placeholder, see `llavaDocument`.)
 */
export function janusDocument(prompt: readonly number[], image: readonly number[] | undefined, opts: JanusOptions = {}): SequenceDocument {
  const { shape = [24, 24], modality = "image", bos = "<bos>", loss } = opts;
  const n = product(shape);
  if (image !== undefined && image.length !== n) throw new Error(`janusDocument: Janus images have a fixed length of ${n} codes (shape [${shape.join(", ")}]), got ${image.length}`);
  return { segments: [special(bos), ...text(prompt), { kind: "block", modality, shape, ...(image !== undefined && { ids: image }), ...withLoss(loss) }] };
}

/** This repository's paired caption/image layout (`unconditionalImage`, `captionSlot`, `captionWeight`). */
export type PairedLayout = {
  /** total loss weight of the image tokens (and end marker) in an image→text sequence (0 = captioning only) */
  readonly unconditionalImage: number;
  /**
   * Captions are padded to this many tokens (0 = no padding), so the begin marker and every
   * image token sit at the same absolute position in both directions and for every caption: a
   * learned position embedding then means the same grid cell everywhere, and the caption-free
   * prefix `<bos> <pad>… <boi>` is the caption-dropped text→image prompt.
   */
  readonly captionSlot: number;
  /** total loss weight of the caption + end token in an image→text sequence (the image in text→image has 1) */
  readonly captionWeight: number;
};

/** 2 and 3 for captionWeight measured worse in the demo (captions 87% / 86% against 90%). */
export const DEFAULT_PAIRED: PairedLayout = { unconditionalImage: 0.25, captionSlot: 6, captionWeight: 1 };

/** Throws, naming the field and the value, unless `x` (e.g. from a run file or `--set`) is a valid PairedLayout. */
export function checkPairedLayout(x: unknown, where = "layout"): asserts x is PairedLayout {
  const l = x as Record<string, unknown> | null;
  if (typeof l !== "object" || l === null) throw new Error(`${where}: expected an object { unconditionalImage, captionSlot, captionWeight }, got ${JSON.stringify(x)}`);
  if (!Number.isInteger(l.captionSlot) || (l.captionSlot as number) < 0 || (l.captionSlot as number) > 4096) throw new Error(`${where}.captionSlot: expected an integer in [0, 4096] (0 = no padding), got ${JSON.stringify(l.captionSlot)}`);
  for (const k of ["unconditionalImage", "captionWeight"]) {
    const v = l[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1000) throw new Error(`${where}.${k}: expected a number in [0, 1000], got ${JSON.stringify(v)}`);
  }
  for (const k of Object.keys(l)) if (!["unconditionalImage", "captionSlot", "captionWeight"].includes(k)) throw new Error(`${where}.${k}: unknown field; expected unconditionalImage, captionSlot, captionWeight`);
}

export type PairedOptions = { readonly layout?: PairedLayout; readonly modality?: string; readonly bos?: string; readonly eos?: string };

const captionSlot = (ids: readonly number[], slot: number): TextSegment => ({ kind: "text", ids, ...(slot > 0 && { padTo: slot }) });

/**
 * text→image: `<bos> caption <pad>… <boi> image <eoi>`, loss 1 on image + `<eoi>`. `image`
 * absent: the generation prompt (the caption `[]` gives the unconditional one, for guidance).
 */
export function textToImageDocument(caption: readonly number[], image: readonly number[] | undefined, shape: readonly number[], opts: PairedOptions = {}): SequenceDocument {
  const { layout = DEFAULT_PAIRED, modality = "image", bos = "<bos>" } = opts;
  return { segments: [special(bos), captionSlot(caption, layout.captionSlot), { kind: "block", modality, shape, ...(image !== undefined && { ids: image }), loss: 1 }] };
}

/** Longest caption to generate, counting its end token: the slot (+1), or 8 without a slot. */
export const maxCaptionTokens = (layout: PairedLayout): number => (layout.captionSlot > 0 ? layout.captionSlot + 1 : 8);

/**
 * image→text: `<bos> <pad>… <boi> image <eoi> caption <eos>`, loss `captionWeight` on caption +
 * `<eos>` and `unconditionalImage` on image + `<eoi>`: an image with no caption, so that weight
 * trains p(image), the unconditional model classifier-free guidance needs, at no extra cost.
 * `caption` absent: the captioning prompt, with `maxCaptionTokens` positions to generate.
 */
export function imageToTextDocument(image: readonly number[], caption: readonly number[] | undefined, shape: readonly number[], opts: PairedOptions = {}): SequenceDocument {
  const { layout = DEFAULT_PAIRED, modality = "image", bos = "<bos>", eos = "<eos>" } = opts;
  const reply: TextSegment = caption === undefined ? { kind: "text", maxLength: maxCaptionTokens(layout), end: eos } : { kind: "text", ids: caption, end: eos, loss: layout.captionWeight };
  return { segments: [special(bos), captionSlot([], layout.captionSlot), { kind: "block", modality, shape, ids: image, loss: layout.unconditionalImage }, reply] };
}
