/**
 * A labelled set of images, stored flat so that a batch is one copy.
 * images: [N, C·H·W] channels-first row-major, values in [0, 1] (0 = background, 1 = ink for MNIST)
 * labels: [N]
 */
export type ImageSet = {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly n: number;
  readonly height: number;
  readonly width: number;
  /** C; absent = 1 (grayscale). */
  readonly channels?: number;
};

/**
 * What a pipeline needs to know of a labelled image data set, so that no stage hard-codes its
 * sizes: the image shape and the class names (MNIST: "0" … "9").
 */
export type DatasetInfo = {
  readonly name: string;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly classes: readonly string[];
};

/** Values per image of `set`: C·H·W. */
export const imageSize = (set: Pick<ImageSet, "height" | "width" | "channels">) => (set.channels ?? 1) * set.height * set.width;
