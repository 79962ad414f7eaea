/**
 * bench:memory's reading of jax-js's printed programs (bench/lib/jit-program.ts): the parse of a
 * real printout's steps, the replay's live bytes and high-water mark, and the two allocator
 * models on a pattern where they differ.
 */
import { describe, expect, it } from "vitest";
import { coalescingAllocator, sizeClassAllocator, parseJitProgram, replay, simulateHeap, type ParsedProgram } from "../../bench/lib/jit-program.ts";

// As jax-js 0.1.25 prints `jit((x) => np.tanh(np.matmul(x.ref, x)).sum())` on an [8, 8] input.
const PRINTED = `{ device = wasm
  inputs = [0]
  outputs = [2]
  steps =
    %1 = malloc <256 bytes>
    execute (0: %0) -> %1, kernel
      { exp = (GV_0<float32>{8,8,8:8,0,1:nc}[($gidx:int32 / 8) % 8, $gidx:int32 % 8, $ridx:int32] * GV_0<float32>{8,8,8:0,1,8:nc}[($gidx:int32 / 8) % 8, $gidx:int32 % 8, $ridx:int32])
        size = 64
        reduction = Add{8} -> $acc:float32 }
    %2 = malloc <4 bytes>
    execute (0: %1) -> %2, kernel
      { exp = (Exp(GV_0<float32>{64:1:c}[$ridx:int32]) * 2)
        size = 1
        reduction = Add{64} -> $acc:float32 }
    free 1 }`;

describe("jax-js program printouts", () => {
  it("parses the steps, kinds and inputs/outputs of a real printout", () => {
    const p = parseJitProgram(PRINTED);
    expect(p.inputs).toEqual([0]);
    expect(p.outputs).toEqual([2]);
    expect(p.steps).toEqual([
      { type: "malloc", id: 1, bytes: 256 },
      { type: "execute", inputs: [0], outputs: [1], kind: "contraction K=8" },
      { type: "malloc", id: 2, bytes: 4 },
      { type: "execute", inputs: [1], outputs: [2], kind: "reduce Add K=64" },
      { type: "free", id: 1 },
    ]);
    expect(() => parseJitProgram(PRINTED.replace("free 1", "release 1"))).toThrow(/unknown step line "release 1"/);
  });

  it("replays live bytes: the peak, where it is, what is held, and increfs delaying a free", () => {
    const p: ParsedProgram = {
      inputs: [0],
      outputs: [4],
      steps: [
        { type: "malloc", id: 1, bytes: 100 },
        { type: "execute", inputs: [0], outputs: [1], kind: "elementwise" },
        { type: "incref", id: 1 },
        { type: "malloc", id: 2, bytes: 300 },
        { type: "execute", inputs: [1], outputs: [2], kind: "contraction K=4" },
        { type: "free", id: 1 }, // still held by the incref
        { type: "malloc", id: 3, bytes: 50 },
        { type: "execute", inputs: [2], outputs: [3], kind: "elementwise" },
        { type: "free", id: 1 },
        { type: "free", id: 2 },
        { type: "malloc", id: 4, bytes: 10 },
        { type: "execute", inputs: [3], outputs: [4], kind: "reduce Add K=50" },
        { type: "free", id: 3 },
      ],
    };
    const r = replay(p);
    expect(r.curve).toEqual([100, 100, 100, 400, 400, 400, 450, 450, 350, 50, 60, 60, 10]);
    expect([r.peak, r.peakAt, r.mallocs, r.mallocBytes, r.kernels, r.outputBytes]).toEqual([450, 6, 4, 460, 4, 10]);
    expect(r.heldAtPeak.map((g) => [g.kind, g.bytes])).toEqual([["contraction K=4", 300], ["elementwise", 100], ["elementwise", 50]]);
  });

  it("size classes keep freed blocks of one size from serving another; coalescing merges them", () => {
    // two 64 KiB blocks freed, then one 128 KiB block wanted
    const p: ParsedProgram = {
      inputs: [],
      outputs: [],
      steps: [
        { type: "malloc", id: 1, bytes: 65536 },
        { type: "malloc", id: 2, bytes: 65536 },
        { type: "free", id: 1 },
        { type: "free", id: 2 },
        { type: "malloc", id: 3, bytes: 131072 },
        { type: "free", id: 3 },
      ],
    };
    expect(simulateHeap(p, sizeClassAllocator(), 1)).toBe(64 + 65536 * 4);
    expect(simulateHeap(p, coalescingAllocator(), 1)).toBe(64 + 65536 * 2);
  });
});
