/**
 * mmntp's browser-safe API: everything here runs wherever jax-js runs, with no `node:` module
 * anywhere in its import graph (test/browser/bundle.test.ts bundles this file for the browser
 * and fails on any Node built-in). The Node entry (`index.ts`) re-exports all of it, plus the
 * Node-only pieces: native GEMM and worker pool, files, MNIST, text-tokenizer training, pipelines.
 *
 * Names follow the modules they come from; where two modules use one name, the less central
 * one gets an alias (noted at its export).
 */

// ── engine: jax-js start-up, host↔device, PRNG keys, params ↔ tensors ──
export {
  blockUntilReady,
  ConcreteArray,
  copyRunsInPlace,
  fromHost,
  grad,
  jit,
  lax,
  nn,
  np,
  random,
  startEngine,
  tree,
  valueAndGrad,
  vjp,
  type Array,
  type DType,
  type JsTree,
  type OwnedFunction,
} from "./engine/index.ts";
export { KeyStream, hostRng } from "./engine/rng.ts";
// GELU and softmax keeping one array for the backward pass (src/nn/lean.ts); on by default
export { leanActivations, setLeanActivations, withoutLeanActivations } from "./engine/lean.ts";
export { EngineMemoryError, engineMemoryError, formatBytes, type EngineMemoryDetails } from "./engine/out-of-memory.ts";
export { expectationsOfInit, paramsFromTensors, paramsOfInit, paramsToTensors } from "./engine/params.ts";
// The error every reader and validator of user input throws (io/errors.ts).
export { asInputError, InputError, isInputError, type InputErrorDetails } from "./io/errors.ts";

// ── tokenizers: the contract, the image auto-encoder, the quantizer family, text ──
export { idsOf, type Image, type SavedTokenizer, type TokenIds, type Tokenizer } from "./tokenizers/tokenizer.ts";
export {
  AutoencoderTokenizer,
  checkAutoencoderConfig,
  latentGrid,
  type AutoencoderParams,
  type AutoencoderTokenizerConfig,
  type ConvAEConfig,
  type OutputHead,
} from "./tokenizers/image/autoencoder.ts";
export { MNIST_VQVAE } from "./tokenizers/image/presets.ts";
export { checkQuantizerSpec, makeQuantizer, QUANTIZER_NAMES, QUANTIZERS, type Grid, type QuantizerName, type QuantizerSpec } from "./tokenizers/quantizers/registry.ts";
export { bitsPerToken, type AnyQuantizer, type QuantizerAdapter } from "./tokenizers/quantizers/adapter.ts";
export type { QuantizeResult } from "./tokenizers/quantizers/types.ts";
// One namespace per quantizer: they share function names (`quantize`, `indicesToCodes`).
export * as vq from "./tokenizers/quantizers/vq.ts";
export * as rvq from "./tokenizers/quantizers/rvq.ts";
export * as groupVQ from "./tokenizers/quantizers/group-vq.ts";
export * as multiscale from "./tokenizers/quantizers/multiscale.ts";
export * as fsq from "./tokenizers/quantizers/fsq.ts";
export * as lfq from "./tokenizers/quantizers/lfq.ts";
export * as binary from "./tokenizers/quantizers/binary.ts";
export { TextTokenizer } from "./tokenizers/text/text-tokenizer.ts";
export { codebookHealth, usageHistogram, type CodebookHealth, type UsageHistogram } from "./tokenizers/quantizers/health.ts";

// ── backbone: the transformer, masks, the sequence-layout compiler, batching ──
export {
  blocksInput,
  checkTransformerConfig,
  countParameters,
  embedInputs,
  forward,
  forwardCached,
  hidden,
  initCaches,
  initTransformer,
  lmHead,
  MLP_KINDS,
  POSITION_KINDS,
  transformerBlock,
  type BackboneInput,
  type BlockParams,
  type PositionKind,
  type TransformerConfig,
  type TransformerParams,
} from "./backbone/transformer.ts";
export { blockCausalMask, blockCausalMaskHost, causalMask, prefixMask } from "./backbone/masks.ts";
export * from "./backbone/sequence/index.ts";
export { batchSequences, type BatchOptions, type SequenceBatch } from "./backbone/batch.ts";
// ── audio: companding codes, STFT / iSTFT, mel features (differentiable) ──
export { compand, expandCodes, type CompandingLaw } from "./tokenizers/audio/companding.ts";
export { hannWindow, istft, stft, stftFrames, type Complex, type StftOptions } from "./tokenizers/audio/stft.ts";
export { dctMatrix, logMelSpectrogram, melFilterbank, melSpectrogram, mfcc, powerSpectrum, type MelOptions } from "./tokenizers/audio/mel.ts";
// The neural codec: 1-D convs (channels last), the SoundStream/EnCodec-style codec, its tokenizer,
// its losses, its trainer and its metrics.
export { conv1d, conv1dLength, convTranspose1d, initConv1d, initConvTranspose1d, type Conv1dOptions, type Conv1dParams, type ConvTranspose1dOptions, type ConvTranspose1dParams } from "./nn/conv1d.ts";
export { bitrate, decodeWave, encodeWave, frameRate, hopOf, initCodec, padToHop, reconstruct, type CodecConfig, type CodecParams } from "./tokenizers/audio/codec.ts";
export { checkCodecConfig, CodecTokenizer, codecExpectations, DEFAULT_CODEC } from "./tokenizers/audio/codec-tokenizer.ts";
export { multiResolutionStftLoss } from "./tokenizers/audio/spectral-loss.ts";
export { DEFAULT_CODEC_TRAIN, trainCodec, type CodecProgress, type CodecTrainConfig } from "./train/codec.ts";
export { meanAbsDiff, siSnr } from "./eval/audio.ts";
export { wordAccuracy, wordErrors } from "./eval/asr.ts";
export { voiceAccuracy, voiceEmbedding, voiceIdentifier, type VoiceIdentifier } from "./eval/voice.ts";
// HuBERT-style semantic units: k-means of MFCC frames (or of any frame features).
export { assignFrames, clusterFrames, DEFAULT_SEMANTIC, encodeUnits, fitSemanticUnits, mfccFrames, type SemanticUnits, type SemanticUnitsConfig } from "./tokenizers/audio/semantic.ts";
// Multi-stream sequences (the MusicGen delay pattern over codec levels), their loss and decoder.
export { audioSpan, compileStreams, embedStreams, levelName, levelRanges, readAudio, streamBatch, streamLength, streamVocab, vocabLevels, STREAM_SPECIALS, type StreamBatch, type StreamSegment, type StreamSequence } from "./backbone/streams.ts";
export { StreamDecoder, type StreamChooser } from "./generate/streams.ts";
export { trainStreamModel } from "./train/streams.ts";
// The backbone's and the VQ decoder's tensors under PyTorch names (reference/mmntp_torch.py).
export { backboneFromTorch, backboneToTorch, torchExpectations, torchNameOf, type TorchName } from "./backbone/torch-names.ts";
export { IMAGE_DECODER_NAMES, imageDecoderToTorch, imageDecoderUnsupported, torchImageDecoderConfig, type TorchImageDecoderConfig } from "./tokenizers/image/torch-names.ts";

// ── generate: the KV-cached decoding loop, samplers, layout-driven filling ──
// decode.ts's names are aliased: `Constraint` is the sequence layouts' declarative constraint,
// `GenerateOptions` the saved-run `generate` options (Node entry).
export { Decoder, type Constraint as DecodeConstraint, type GenerateOptions as DecodeOptions } from "./generate/decode.ts";
export { GREEDY, sampleToken, type SamplingOptions } from "./generate/sampling.ts";
export { blockCodes, fillHoles, textIds, type FillOptions, type Filled } from "./generate/layout.ts";
// Generation orders (raster, MaskGIT, random order, next-scale) through one loop.
export { checkTrainedOrder, OrderDecoder, orderLength, type DecodeOrder, type OrderGenerateOptions, type OrderModel } from "./generate/order-decoder.ts";
export { ORDER_NAMES, rasterSchedule, type Draw, type OrderName, type Schedule, type StepPreview, type TrainedOrder } from "./generate/schedule.ts";
export { checkGuidance, GUIDANCE_SCHEDULES, guidanceScale, mixGuidance, type Guidance, type GuidanceSchedule } from "./generate/guidance.ts";
export { encodeGrayGif, tileGray, type GifOptions, type GrayGrid } from "./generate/gif.ts";
export { batchOrderRows, type OrderBatch, type OrderInput, type OrderRow } from "./backbone/orders/rows.ts";
export { initTargetPositions, orderLogits, type OrderForwardInput, type OrderParams } from "./backbone/orders/forward.ts";
export { MASK_TOKEN } from "./backbone/orders/masked.ts";
export { trainingRow, type TrainingRowOptions } from "./backbone/orders/training.ts";
export { maskedTokenLoss } from "./train/masked.ts";

// ── train: the jitted trainer, AdamW, losses, auto-encoder tokenizer training ──
export { Trainer, type LossFn, type StepResult } from "./train/step.ts";
export { CheckpointedTrainer } from "./train/checkpointed.ts";
export { adamwUpdate, DEFAULT_ADAMW, globalNorm, initAdamW, warmupCosine, type AdamWConfig, type AdamWState, type Params } from "./train/optim.ts";
export { nextTokenLoss, sequenceLogProbs, streamLoss, tokenLogProbs, weightedCrossEntropy, type NextTokenBatch } from "./train/losses.ts";
export {
  DEFAULT_AUTOENCODER_TRAIN,
  trainAutoencoder,
  trainAutoencoderTokenizer,
  type AutoencoderCheckpointing,
  type AutoencoderTrainConfig,
  type AutoencoderTrainState,
  type TrainProgress,
} from "./train/autoencoder.ts";

// ── io on plain bytes: safetensors, nested trees ↔ flat names ──
// `DType` is jax-js's; the file format's dtype names ("F32", …) get the alias.
export { decodeSafetensors, encodeSafetensors, type DType as SafetensorsDType, type TensorRecord } from "./io/safetensors.ts";
export { flattenTree, unflattenTree, type Tree } from "./io/tree.ts";

// ── data types shared by the trainers (the loaders themselves read files: Node entry) ──
export { imageSize, type DatasetInfo, type ImageSet } from "./data/types.ts";
// The embedded colour data set and its exact scene checker (drawn from a seed: no files).
export {
  checkScene,
  findObjects,
  makeShapes,
  parseSceneCaption,
  randomScene,
  relationOf,
  renderScene,
  sceneCaption,
  RELATIONS,
  SHAPE_COLORS,
  SHAPE_KINDS,
  SHAPE_SIZES,
  SHAPES_INFO,
  SHAPES_SIZE,
  type FoundObject,
  type Relation,
  type Scene,
  type SceneCheck,
  type SceneObject,
  type ShapeColor,
  type ShapeKind,
  type ShapeSize,
} from "./data/shapes.ts";

// Evaluation: reconstruction and classification figures, the judge classifier, Fréchet distance.
export { accuracy, inceptionScore, psnr } from "./eval/metrics.ts";
export { ssim, ssimPerImage, type ImageShape, type SsimOptions } from "./eval/ssim.ts";
export { checkJudgeConfig, initJudge, Judge, judgeFeatures, judgeLogits, judgeLoss, type JudgeConfig, type JudgeParams } from "./eval/judge.ts";
export { frechetDistance, frechetDistanceOf, gaussianOf, generatorScores, symmetricEigen, symmetricSqrt, type Gaussian } from "./eval/frechet.ts";

// ── continuous tokens: encoders, projectors, resampler, freezing ──
export { patchGrid, patchify, unpatchify, type PatchGrid } from "./tokenizers/continuous/patches.ts";
export { checkViTConfig, initViT, meanPool, vitEncode, vitTokens, type ViTBlockParams, type ViTConfig, type ViTParams } from "./tokenizers/continuous/vit.ts";
export { checkCNNEncoderConfig, CNN_ACTIVATIONS, cnnEncode, cnnGrid, initCNNEncoder, type CNNEncoderConfig, type CNNEncoderParams } from "./tokenizers/continuous/cnn.ts";
export { crossAttention, initCrossAttention, type CrossAttentionOptions, type CrossAttentionParams } from "./nn/cross-attention.ts";
export { checkProjectorConfig, initProjector, projectFeatures, PROJECTOR_KINDS, type ProjectorConfig, type ProjectorKind, type ProjectorParams } from "./backbone/adapters/projector.ts";
export { checkResamplerConfig, checkResamplerSlots, initResampler, resample, type ResamplerConfig, type ResamplerLayerParams, type ResamplerParams } from "./backbone/adapters/resampler.ts";
export { FrozenTrainer, matchesPattern, splitParams, type ParamSplit, type SplitOptions } from "./train/freeze.ts";

// ── continuous outputs: diffusion and regression heads ──
// MAR's per-token diffusion head (cosine schedule, DDIM), its loss and sampler; Emu's regression head.
export { alphaBar, checkDiffusionSteps, cosineSchedule, qSample, qSampleAt, type DiffusionSchedule } from "./backbone/heads/diffusion-schedule.ts";
export { ddimCoefficients, ddimScalars, ddimStep, ddimUpdate, samplingTimesteps, type DdimCoefficients } from "./backbone/heads/ddim.ts";
export { checkDiffusionHeadConfig, initDiffusionHead, predictNoise, timestepEmbedding, type AdaLNBlockParams, type DiffusionHeadConfig, type DiffusionHeadParams } from "./backbone/heads/diffusion-head.ts";
export { checkRegressionHeadConfig, initRegressionHead, regress, regressionErrors, regressionLoss, REGRESSION_LOSSES, type RegressionHeadConfig, type RegressionHeadParams, type RegressionLossKind } from "./backbone/heads/regression.ts";
export { checkDiffusionMultiplier, diffusionDraws, diffusionLoss, type DiffusionBatch, type DiffusionLossOptions } from "./train/diffusion-loss.ts";
export { checkDiffusionSampling, ddimSample, sampleDiffusion, type DiffusionSample, type DiffusionSampling, type NoisePredictor } from "./generate/diffusion.ts";
