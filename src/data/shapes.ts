/**
 * The embedded colour data set: procedurally drawn scenes of 1–3 flat-coloured shapes (circle,
 * square, triangle; six colours, two sizes) on black, 32×32 RGB, each with its exact caption
 * ("a small red circle above a large blue square"). Made from a seed, so nothing is downloaded
 * and any number of scenes can be drawn; scene i of seed s is the same on every machine.
 *
 * `checkScene` reads a picture back without learning anything: it segments the pixels by their
 * nearest palette colour, classifies each connected component's shape and size from its area
 * and bounding box, and compares objects and relations with the caption. On the renderer's own
 * scenes it is exact (test/data/shapes.test.ts); on a tokenizer's reconstructions or a model's
 * samples it is a GenEval-style compositional score.
 */
import { mulberry32, pick, type Rng } from "./shuffle.ts";
import type { DatasetInfo, ImageSet } from "./types.ts";

export const SHAPES_SIZE = 32;
export const SHAPE_KINDS = ["circle", "square", "triangle"] as const;
export const SHAPE_COLORS = { red: [1, 0, 0], green: [0, 1, 0], blue: [0, 0, 1], yellow: [1, 1, 0], magenta: [1, 0, 1], cyan: [0, 1, 1] } as const;
export const SHAPE_SIZES = { small: 7, large: 11 } as const;
export const RELATIONS = ["left of", "right of", "above", "below"] as const;

export type ShapeKind = (typeof SHAPE_KINDS)[number];
export type ShapeColor = keyof typeof SHAPE_COLORS;
export type ShapeSize = keyof typeof SHAPE_SIZES;
export type Relation = (typeof RELATIONS)[number];
/** One object: its bounding box's top-left corner (x, y) and side `SHAPE_SIZES[size]`. */
export type SceneObject = { readonly kind: ShapeKind; readonly color: ShapeColor; readonly size: ShapeSize; readonly x: number; readonly y: number };
/** Objects in caption order; `relations[i]` relates object i to object i + 1. */
export type Scene = { readonly objects: readonly SceneObject[]; readonly relations: readonly Relation[] };

const COLOR_NAMES = Object.keys(SHAPE_COLORS) as ShapeColor[];
const SIZE_NAMES = Object.keys(SHAPE_SIZES) as ShapeSize[];
/** Free pixels kept between objects' boxes, so that components never touch. */
const GAP = 2;
/** How much farther apart two related objects' centres are along the relation's axis than across it. */
const CLEAR = 3;

/** Whether pixel (px, py) of a box at (0, 0) of side s is inside shape `kind` (pixel centres at +0.5). */
function inside(kind: ShapeKind, s: number, px: number, py: number): boolean {
  const u = px + 0.5;
  const v = py + 0.5;
  if (kind === "square") return true;
  if (kind === "circle") return (u - s / 2) ** 2 + (v - s / 2) ** 2 <= (s / 2) ** 2;
  // An upright isosceles triangle: apex at the top centre, base along the bottom row.
  return Math.abs(u - s / 2) <= (v / s) * (s / 2);
}

const centre = (o: SceneObject) => [o.x + SHAPE_SIZES[o.size] / 2, o.y + SHAPE_SIZES[o.size] / 2] as const;

/** The relation of a to b by their centres along the axis on which they differ more; undefined when not clearly one. */
export function relationOf(a: readonly [number, number], b: readonly [number, number], clear = CLEAR): Relation | undefined {
  const dx = a[0] - b[0];
  const dy = a[1] - b[1];
  if (Math.abs(Math.abs(dx) - Math.abs(dy)) < clear) return undefined;
  if (Math.abs(dx) > Math.abs(dy)) return dx < 0 ? "left of" : "right of";
  return dy < 0 ? "above" : "below";
}

const overlaps = (a: SceneObject, b: SceneObject) => {
  const sa = SHAPE_SIZES[a.size] + GAP;
  const sb = SHAPE_SIZES[b.size] + GAP;
  return a.x < b.x + sb && b.x < a.x + sa && a.y < b.y + sb && b.y < a.y + sa;
};

/** A random scene of 1–3 objects (rejection-sampled: boxes apart, every relation clear). */
export function randomScene(rng: Rng): Scene {
  const count = 1 + Math.floor(rng() * 3);
  for (;;) {
    const objects: SceneObject[] = [];
    for (let tries = 0; objects.length < count && tries < 50; tries++) {
      const size = pick(SIZE_NAMES, rng);
      const s = SHAPE_SIZES[size];
      const o = { kind: pick(SHAPE_KINDS, rng), color: pick(COLOR_NAMES, rng), size, x: 1 + Math.floor(rng() * (SHAPES_SIZE - s - 1)), y: 1 + Math.floor(rng() * (SHAPES_SIZE - s - 1)) };
      if (objects.every((p) => !overlaps(o, p))) objects.push(o);
    }
    if (objects.length < count) continue;
    const relations = objects.slice(1).map((b, i) => relationOf(centre(objects[i]!), centre(b)));
    if (relations.every((r) => r !== undefined)) return { objects, relations: relations as Relation[] };
  }
}

/** `scene` drawn as [3, 32, 32] RGB in [0, 1] on black. */
export function renderScene(scene: Scene): Float32Array {
  const n = SHAPES_SIZE * SHAPES_SIZE;
  const out = new Float32Array(3 * n);
  for (const o of scene.objects) {
    const s = SHAPE_SIZES[o.size];
    const rgb = SHAPE_COLORS[o.color];
    for (let py = 0; py < s; py++) {
      for (let px = 0; px < s; px++) {
        if (!inside(o.kind, s, px, py)) continue;
        const i = (o.y + py) * SHAPES_SIZE + o.x + px;
        for (let c = 0; c < 3; c++) out[c * n + i] = rgb[c]!;
      }
    }
  }
  return out;
}

const phrase = (o: Pick<SceneObject, "size" | "color" | "kind">) => `a ${o.size} ${o.color} ${o.kind}`;

/** "a small red circle above a large blue square left of a small green triangle". */
export function sceneCaption(scene: Scene): string {
  return scene.objects.map((o, i) => (i === 0 ? phrase(o) : `${scene.relations[i - 1]} ${phrase(o)}`)).join(" ");
}

export type CaptionedObject = Pick<SceneObject, "kind" | "color" | "size">;

/** The objects and relations a caption names; throws, quoting it, when it is not one of `sceneCaption`'s. */
export function parseSceneCaption(caption: string): { objects: CaptionedObject[]; relations: Relation[] } {
  const words = caption.trim().split(/\s+/);
  const objects: CaptionedObject[] = [];
  const relations: Relation[] = [];
  let i = 0;
  const fail = (what: string, at = i): never => {
    throw new Error(`not a shapes caption: ${JSON.stringify(caption)} (${what} at word ${at + 1}; expected e.g. "a small red circle above a large blue square")`);
  };
  for (;;) {
    if (words[i] !== "a") fail(`expected "a"`);
    const [size, color, kind] = [words[i + 1], words[i + 2], words[i + 3]];
    if (!SIZE_NAMES.includes(size as ShapeSize)) fail(`expected a size (${SIZE_NAMES.join(", ")})`, i + 1);
    if (!COLOR_NAMES.includes(color as ShapeColor)) fail(`expected a colour (${COLOR_NAMES.join(", ")})`, i + 2);
    if (!SHAPE_KINDS.includes(kind as ShapeKind)) fail(`expected a shape (${SHAPE_KINDS.join(", ")})`, i + 3);
    objects.push({ size: size as ShapeSize, color: color as ShapeColor, kind: kind as ShapeKind });
    i += 4;
    if (i === words.length) return { objects, relations };
    const two = `${words[i]} ${words[i + 1]}`;
    if (two === "left of" || two === "right of") {
      relations.push(two);
      i += 2;
    } else if (words[i] === "above" || words[i] === "below") {
      relations.push(words[i] as Relation);
      i += 1;
    } else fail(`expected a relation (${RELATIONS.join(", ")})`);
  }
}

/** An object found in a picture: its palette colour, shape, size, centre and pixel count. */
export type FoundObject = CaptionedObject & { readonly cx: number; readonly cy: number; readonly area: number };

/** Pixels nearer than this (RGB distance) to no palette colour, or to black, count as background. */
const MATCH = 0.5;
/** Components smaller than this many pixels are noise, not objects. */
const MIN_AREA = 12;

/**
 * The objects of an RGB picture [3, H, W] in [0, 1]: each pixel takes its nearest colour among
 * black and the palette (black or farther than 0.5 from all: background); 4-connected
 * components of one colour of ≥ 12 pixels are objects. Shape from the fill of the bounding box
 * (square ≈ 1, circle ≈ π/4, triangle ≈ ½), size from the box's longer side.
 */
export function findObjects(image: Float32Array, height = SHAPES_SIZE, width = SHAPES_SIZE): FoundObject[] {
  const n = height * width;
  if (image.length !== 3 * n) throw new Error(`findObjects: expected an RGB image of 3×${height}×${width} (${3 * n} values), got ${image.length}`);
  const label = new Int8Array(n).fill(-1);
  const palette = COLOR_NAMES.map((c) => SHAPE_COLORS[c]);
  for (let i = 0; i < n; i++) {
    const rgb = [image[i]!, image[n + i]!, image[2 * n + i]!];
    let best = -1;
    let bestD = Math.hypot(...rgb); // black
    palette.forEach((p, k) => {
      const d = Math.hypot(rgb[0]! - p[0], rgb[1]! - p[1], rgb[2]! - p[2]);
      if (d < bestD) [best, bestD] = [k, d];
    });
    if (best >= 0 && bestD < MATCH) label[i] = best;
  }
  const seen = new Uint8Array(n);
  const found: FoundObject[] = [];
  const stack: number[] = [];
  for (let start = 0; start < n; start++) {
    if (label[start]! < 0 || seen[start]) continue;
    const k = label[start]!;
    let [area, sx, sy, x0, x1, y0, y1] = [0, 0, 0, width, -1, height, -1];
    stack.push(start);
    seen[start] = 1;
    while (stack.length > 0) {
      const i = stack.pop()!;
      const x = i % width;
      const y = (i - x) / width;
      area++;
      sx += x;
      sy += y;
      [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
      for (const j of [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, y > 0 ? i - width : -1, y < height - 1 ? i + width : -1]) {
        if (j >= 0 && !seen[j] && label[j] === k) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    if (area < MIN_AREA) continue;
    const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
    const fill = area / ((x1 - x0 + 1) * (y1 - y0 + 1));
    const kind: ShapeKind = fill > 0.9 ? "square" : fill > 0.64 ? "circle" : "triangle";
    const size: ShapeSize = side <= (SHAPE_SIZES.small + SHAPE_SIZES.large) / 2 ? "small" : "large";
    // The box's centre, not the centroid: a triangle's centroid sits low in its box, and the renderer relates box centres.
    found.push({ kind, color: COLOR_NAMES[k]!, size, cx: (x0 + x1 + 1) / 2, cy: (y0 + y1 + 1) / 2, area });
  }
  return found;
}

export type SceneCheck = { readonly ok: boolean; readonly reason?: string; readonly found: readonly FoundObject[] };

/**
 * Whether an RGB picture [3, 32, 32] shows what `caption` says: exactly its objects (colour,
 * shape, size; no others) and each relation between consecutive objects. Objects are matched
 * to the caption's by colour, shape and size (any consistent assignment passes).
 */
export function checkScene(image: Float32Array, caption: string): SceneCheck {
  const want = parseSceneCaption(caption);
  const found = findObjects(image);
  const describe = (o: CaptionedObject) => `${o.size} ${o.color} ${o.kind}`;
  if (found.length !== want.objects.length) {
    return { ok: false, reason: `found ${found.length} objects (${found.map(describe).join(", ") || "none"}), the caption names ${want.objects.length}`, found };
  }
  // Every assignment of found objects to the caption's (at most 3! = 6) that matches each
  // object's attributes; passes if one also satisfies every relation.
  const perms = (k: number): number[][] => (k === 0 ? [[]] : perms(k - 1).flatMap((p) => Array.from({ length: k }, (_, i) => [...p.slice(0, i), k - 1, ...p.slice(i)])));
  let reason = `the objects found (${found.map(describe).join(", ")}) are not the caption's`;
  for (const p of perms(found.length)) {
    const objs = p.map((j) => found[j]!);
    if (!objs.every((o, i) => describe(o) === describe(want.objects[i]!))) continue;
    const bad = want.relations.findIndex((r, i) => relationOf([objs[i]!.cx, objs[i]!.cy], [objs[i + 1]!.cx, objs[i + 1]!.cy], 0) !== r);
    if (bad < 0) return { ok: true, found };
    reason = `the ${describe(objs[bad]!)} is not ${want.relations[bad]} the ${describe(objs[bad + 1]!)}`;
  }
  return { ok: false, reason, found };
}

/**
 * A scene's class: the colour and shape ("red circle", …; 18 classes) of its object that comes
 * first in raster order (topmost box, then leftmost), a thing the picture alone decides. What the
 * feature network of rFID is trained to tell apart on this data.
 */
export const SHAPES_INFO: DatasetInfo = {
  name: "shapes",
  height: SHAPES_SIZE,
  width: SHAPES_SIZE,
  channels: 3,
  classes: COLOR_NAMES.flatMap((c) => SHAPE_KINDS.map((k) => `${c} ${k}`)),
};
const firstInRaster = (scene: Scene) => scene.objects.reduce((a, b) => (b.y < a.y || (b.y === a.y && b.x < a.x) ? b : a));
const classOf = (o: SceneObject) => COLOR_NAMES.indexOf(o.color) * SHAPE_KINDS.length + SHAPE_KINDS.indexOf(o.kind);

/** `n` scenes drawn from `seed`: the images as an ImageSet (labels: see SHAPES_INFO) and their scenes and captions. */
export function makeShapes(n: number, seed: number): ImageSet & { scenes: Scene[]; captions: string[] } {
  if (!Number.isInteger(n) || n < 0) throw new Error(`makeShapes: n must be a non-negative integer, got ${n}`);
  const rng = mulberry32(seed);
  const px = 3 * SHAPES_SIZE * SHAPES_SIZE;
  const images = new Float32Array(n * px);
  const labels = new Int32Array(n);
  const scenes: Scene[] = [];
  for (let i = 0; i < n; i++) {
    const scene = randomScene(rng);
    images.set(renderScene(scene), i * px);
    labels[i] = classOf(firstInRaster(scene));
    scenes.push(scene);
  }
  return { images, labels, n, height: SHAPES_SIZE, width: SHAPES_SIZE, channels: 3, scenes, captions: scenes.map(sceneCaption) };
}
