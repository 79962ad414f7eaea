/**
 * A labelled set of single-channel images, stored flat so that a batch is one copy.
 * images: [N, H*W] row-major, values in [0, 1] (0 = background, 1 = ink for MNIST)
 * labels: [N]
 */
export type ImageSet = {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly n: number;
  readonly height: number;
  readonly width: number;
};
