import { describe, expect, it } from "vitest";
import { checkScene, findObjects, makeShapes, parseSceneCaption, randomScene, renderScene, sceneCaption, SHAPES_INFO, SHAPES_SIZE, type Scene } from "../../src/data/shapes.ts";
import { mulberry32 } from "../../src/data/shuffle.ts";

const N = SHAPES_SIZE * SHAPES_SIZE;

describe("colour shapes data set", () => {
  it("is the same for the same seed, different for another", () => {
    const a = makeShapes(50, 3);
    const b = makeShapes(50, 3);
    const c = makeShapes(50, 4);
    expect(b.images).toEqual(a.images);
    expect(b.captions).toEqual(a.captions);
    expect(c.captions).not.toEqual(a.captions);
    expect(a.images.length).toBe(50 * 3 * N);
    expect(new Set(a.images)).toEqual(new Set([0, 1]));
  });

  it("draws 1, 2 and 3 objects, every shape, colour and relation", () => {
    const set = makeShapes(600, 0);
    const words = new Set(set.captions.join(" ").split(" "));
    for (const w of ["circle", "square", "triangle", "red", "green", "blue", "yellow", "magenta", "cyan", "small", "large", "left", "right", "above", "below"]) expect(words).toContain(w);
    const counts = [0, 0, 0];
    for (const s of set.scenes) counts[s.objects.length - 1]!++;
    for (const c of counts) expect(c).toBeGreaterThan(150);
    // labels: the colour and shape of the object whose box is topmost (then leftmost), as SHAPES_INFO names them
    set.scenes.forEach((s, i) => {
      const top = [...s.objects].sort((a, b) => a.y - b.y || a.x - b.x)[0]!;
      expect(SHAPES_INFO.classes[set.labels[i]!]).toBe(`${top.color} ${top.kind}`);
    });
  });

  it("captions parse back into their scene's objects and relations", () => {
    const rng = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      const s = randomScene(rng);
      const p = parseSceneCaption(sceneCaption(s));
      expect(p.objects).toEqual(s.objects.map(({ kind, color, size }) => ({ kind, color, size })));
      expect(p.relations).toEqual(s.relations);
    }
    expect(() => parseSceneCaption("a red circle")).toThrow(/expected a size .* at word 2/);
    expect(() => parseSceneCaption("a small red circle near a small blue square")).toThrow(/expected a relation/);
  });

  it("the checker passes every rendered scene against its own caption (2,000 scenes)", () => {
    const set = makeShapes(2000, 1);
    const failures = set.captions.filter((c, i) => !checkScene(set.images.subarray(i * 3 * N, (i + 1) * 3 * N), c).ok);
    expect(failures).toEqual([]);
  });

  it("the checker finds each object's shape, colour, size and position", () => {
    const scene: Scene = {
      objects: [
        { kind: "triangle", color: "cyan", size: "large", x: 2, y: 3 },
        { kind: "circle", color: "red", size: "small", x: 20, y: 5 },
      ],
      relations: ["left of"],
    };
    const found = findObjects(renderScene(scene));
    expect(found.map(({ kind, color, size, cx, cy }) => ({ kind, color, size, cx, cy }))).toEqual([
      { kind: "triangle", color: "cyan", size: "large", cx: 7.5, cy: 8.5 },
      { kind: "circle", color: "red", size: "small", cx: 23.5, cy: 8.5 },
    ]);
  });

  it("the checker fails a picture that differs from its caption in any one way", () => {
    const scene: Scene = {
      objects: [
        { kind: "square", color: "blue", size: "large", x: 3, y: 3 },
        { kind: "circle", color: "yellow", size: "small", x: 5, y: 22 },
      ],
      relations: ["above"],
    };
    const image = renderScene(scene);
    expect(checkScene(image, "a large blue square above a small yellow circle").ok).toBe(true);
    expect(checkScene(image, "a small yellow circle above a large blue square").reason).toMatch(/is not above/);
    expect(checkScene(image, "a large blue square above a small yellow triangle").reason).toMatch(/not the caption's/);
    expect(checkScene(image, "a large green square above a small yellow circle").ok).toBe(false);
    expect(checkScene(image, "a small blue square above a small yellow circle").ok).toBe(false);
    expect(checkScene(image, "a large blue square").reason).toMatch(/found 2 objects/);
    // Dimmed colours still read as their palette colour; a blurred-away object does not.
    expect(checkScene(image.map((v) => v * 0.7), "a large blue square above a small yellow circle").ok).toBe(true);
    const erased = image.slice();
    for (let c = 0; c < 3; c++) for (let y = 22; y < 29; y++) for (let x = 5; x < 12; x++) erased[c * N + y * SHAPES_SIZE + x] = 0.2;
    expect(checkScene(erased, "a large blue square above a small yellow circle").reason).toMatch(/found 1 objects/);
  });
});
