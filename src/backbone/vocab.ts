/**
 * One joint vocabulary for text and image tokens:
 *   [0, text)                text tokenizer ids (its own <pad>, <unk>, words)
 *   text + 0..3              <bos> <boi> <eoi> <eos>
 *   text + 4 + [0, codes)    image code ids
 */
export const SPECIALS = ["<bos>", "<boi>", "<eoi>", "<eos>"] as const;
export type Special = (typeof SPECIALS)[number];
export type Modality = "text" | "image";

export class JointVocab {
  constructor(
    readonly textSize: number,
    readonly imageCodes: number,
    readonly padId = 0,
  ) {}

  get size(): number {
    return this.textSize + SPECIALS.length + this.imageCodes;
  }

  special(name: Special): number {
    return this.textSize + SPECIALS.indexOf(name);
  }

  get imageStart(): number {
    return this.textSize + SPECIALS.length;
  }

  /** Image code → joint id. */
  image(code: number): number {
    if (!Number.isInteger(code) || code < 0 || code >= this.imageCodes) throw new Error(`image code ${code} out of range [0, ${this.imageCodes - 1}]`);
    return this.imageStart + code;
  }

  /** Joint id → image code, or throws if the id is not an image token. */
  imageCode(id: number): number {
    const code = id - this.imageStart;
    if (code < 0 || code >= this.imageCodes) throw new Error(`token ${id} is not an image token (image ids are ${this.imageStart}..${this.size - 1})`);
    return code;
  }

  modalityOf(id: number): Modality | "special" {
    if (id < 0 || id >= this.size || !Number.isInteger(id)) throw new Error(`unknown token id ${id}: expected an integer in [0, ${this.size - 1}]`);
    if (id < this.textSize) return "text";
    return id < this.imageStart ? "special" : "image";
  }

  /** Additive logit mask [V] allowing only `modality` tokens plus the given specials. */
  allowed(modality: Modality, specials: readonly Special[] = []): Float32Array {
    const mask = new Float32Array(this.size).fill(-Infinity);
    const [lo, hi] = modality === "text" ? [0, this.textSize] : [this.imageStart, this.size];
    mask.fill(0, lo, hi);
    if (modality === "text") mask[this.padId] = -Infinity; // never generate padding
    for (const s of specials) mask[this.special(s)] = 0;
    return mask;
  }
}
