// Types for gifenc 1.0.3 (Matt DesLauriers; MIT), which ships none: the part of its API that
// generate/gif.ts uses, as its README documents it.
declare module "gifenc" {
  export type Palette = number[][];
  export type FrameOptions = { palette?: Palette; delay?: number; repeat?: number; transparent?: boolean; transparentIndex?: number; dispose?: number; first?: boolean };
  export interface GIFStream {
    writeFrame(index: Uint8Array, width: number, height: number, opts?: FrameOptions): void;
    finish(): void;
    bytes(): Uint8Array;
  }
  export function GIFEncoder(opts?: { auto?: boolean; initialCapacity?: number }): GIFStream;
}
