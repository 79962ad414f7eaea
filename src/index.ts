/**
 * mmntp's Node entry: the browser-safe API (`browser.ts`) plus what needs Node — the native GEMM
 * and the worker pool, files (checkpoints, PNG, IDX), the embedded MNIST digits, text-tokenizer
 * training (HF's native `tokenizers`), codebook plots and the demo pipelines.
 */
// First: jax-js builds its wasm backend (worker pool, memory probe) when it is evaluated, so
// Node's engine must load before any module below imports jax-js (src/engine/node.ts).
import "./engine/node.ts";

export * from "./browser.ts";

// ── engine in Node: native GEMM, worker pool, wasm-heap probe ──
export { heapCapFromEnv } from "./engine/memory.ts";
export { engineMemoryBytes, engineWorkerStats, nativeStats, shutdownEngineWorkers, threadsFromEnv, type NativeStats } from "./engine/node.ts";
// KV-cached decoding with each step one native call (the Decoder's API; where the native GEMM builds)
export { NativeDecoder, nativeDecoderMissing } from "./generate/native-decoder.ts";

// ── tokenizers that touch Node ──
export { trainTextTokenizer, type TextTokenizerKind, type TrainTextTokenizerOptions } from "./tokenizers/text/train.ts";
export { plotCodebookUsage, type UsagePlotOptions } from "./tokenizers/quantizers/health-plot.ts";

// ── io on files ──
export { loadCheckpoint, saveCheckpoint, writeAtomic, type Checkpoint, type TensorExpectation } from "./io/checkpoint.ts";
export { encodeGrayPng, readGrayImage, writeGrayGrid, type GridOptions } from "./io/png.ts";
export { MIN_CLIP_SAMPLES, readWav, writeWav, type Clip, type ReadWavOptions } from "./io/wav.ts";

// ── data: the embedded MNIST digits, IDX files, seeded splits ──
export { loadMnist, MNIST_HEIGHT, MNIST_INFO, MNIST_WIDTH } from "./data/mnist.ts";
export { loadIdxImages, loadIdxImageSet, readIdx, writeIdx, type IdxArray, type IdxData, type IdxDtype } from "./data/idx.ts";
export { IMAGE_EXTENSIONS, listImageFolder, readImageFile, readImageFolder, type ImageFolderOptions } from "./data/image-folder.ts";
export { batches, seededPermutation, splitTrainTest, subset } from "./data/shuffle.ts";
export { loadSpeechFolder, loadSpokenDigits, readTranscript, SPEECH_DIR, TRANSCRIPT_FILE, type DigitClip, type SpeechClip, type SpeechSet, type SpokenDigits } from "./data/speech.ts";

// ── pipelines: the demo, run folders, captioning and generation from a saved run ──
// Image tokenizers trained, resumed and measured as `mmntp tokenizer` does (pipelines/tokenizer-run.ts).
export { checkTokenizerRunConfig, tokenizerData, tokenizerPreset, TOKENIZER_PRESETS, type EmbeddedImages, type TokenizerData, type TokenizerRunConfig } from "./pipelines/tokenizer-config.ts";
export { drawTokenizerRun, evaluateTokenizerRun, finishTokenizerRun, loadImageTokenizer, loadTokenizerRun, measureTokenizer, reconstructHeldOut, trainTokenizerRun, type HeldOut, TOKENIZER_RUN_FORMAT, TOKENIZER_RUN_VERSION, type TokenizerHistory, type TokenizerMetrics, type TokenizerRunFile, type TrainTokenizerOptions } from "./pipelines/tokenizer-run.ts";
export { decodeTokenFiles, encodeImageFiles, TOKENS_FORMAT, type TokenFile } from "./pipelines/tokenizer-files.ts";
export { lineChartSvg, writeLineChartSvg, xyChartSvg, type XYSeries } from "./io/svg.ts";
export { checkDemoConfig, DEFAULT_DEMO, QUICK_DEMO, runDemo, type DemoConfig, type DemoMetrics } from "./pipelines/demo.ts";
export { disposeRun, loadRun, saveRun, type Run, type RunManifest } from "./pipelines/run.ts";
// `GenerateOptions` aliased: generate/decode.ts's options are `DecodeOptions` (browser.ts).
export { caption, evaluateRun, generate, type GenerateOptions as RunGenerateOptions, type RunEvaluation } from "./pipelines/use-run.ts";
// PyTorch interop: export a run (and a training shard), import a checkpoint back (docs/scale-out.md).
export { exportTorch, TORCH_FORMAT, TORCH_VERSION, type ExportOptions, type ExportResult, type TorchExportConfig } from "./pipelines/export.ts";
export { importTorch, type ImportResult } from "./pipelines/import.ts";
// Speech recognition and synthesis in one model over codec tokens; speech run folders.
export { asrSegments, checkSpeechTrainConfig, cropFrames, DEFAULT_SPEECH_TRAIN, DEFAULT_SYNTHESIS, recognize, speechExamples, synthesize, trainSpeech, ttsSegments, voiceSegments, type SpeechExample, type SpeechModel, type SpeechTrainConfig, type SynthesisOptions, type TtsLayout } from "./pipelines/speech.ts";
export { disposeSpeechRun, evaluateSpeech, evaluateVoice, loadSpeechRun, saveSpeechRun, speak, transcribe, trainSpeechRun, SPEECH_FORMAT, SPEECH_VERSION, type SpeechManifest, type SpeechReport, type SpeechRun, type VoiceReport } from "./pipelines/speech-run.ts";
export { speechFeatures } from "./pipelines/speech-units.ts";
// Two speakers' streams in one model (Moshi-style); dialogue run folders.
export { checkDialogueTrainConfig, compileDialogue, DEFAULT_DIALOGUE_TRAIN, dialogueVocab, reply, trainDialogue, type Dialogue, type DialogueModel, type DialogueTrainConfig } from "./pipelines/dialogue.ts";
export { converse, disposeDialogueRun, evaluateDialogue, loadDialogueRun, makeDialogues, saveDialogueRun, trainDialogueRun, DIALOGUE_FORMAT, type DialogueManifest, type DialogueReport, type DialogueRun } from "./pipelines/dialogue-run.ts";
// The audio codec on files: train, save, load, measure; token files; spectrogram pictures.
export { codecData, evaluateCodec, loadCodec, readCodes, saveCodec, trainCodecRun, writeCodes, CODEC_FORMAT, CODEC_VERSION, type CodecLevelReport, type CodecManifest } from "./pipelines/codec.ts";
export { logMels, spectrogramOptions, writeSpectrogram, writeSpectrogramGrid } from "./pipelines/spectrogram.ts";
// The generation orders trained and sampled on the demo's data (pipelines/orders.ts).
export { DEFAULT_ORDERS_EXPERIMENT, type OrdersExperimentConfig } from "./experiments/orders-config.ts";
export { runOrdersExperiment, type OrdersExperimentResult, type OrderVariantResult } from "./experiments/orders.ts";
export { generateWithOrder, orderVocab, orderVocabOfSizes, previewRecorder, trainWithOrder, writePreviews, type OrderSamplingOptions, type OrderTrainConfig } from "./pipelines/orders.ts";
// The continuous-input captioner (LLaVA-style: encoder → projector → placeholder slots), its stages and evaluation.
export { checkContinuousConfig, continuousShapes, stagesOf, CONTINUOUS_ENCODERS, CONTINUOUS_PROJECTORS, CONTINUOUS_STAGES, DEFAULT_CONTINUOUS, type ContinuousCaptionConfig, type ContinuousEncoderKind, type ContinuousProjectorKind, type ContinuousShapes, type ContinuousStage, type ContinuousStageKind } from "./pipelines/continuous-config.ts";
export { backboneConfig as continuousBackboneConfig, captionDocument, captionLayout, captionLogits, continuousBatch, continuousCaptionLoss, continuousVocab, embedImages, initContinuousParams, CONTINUOUS_SPECIALS, IMAGE_PLACEHOLDER, type CaptionLayout, type ContinuousBatch, type ContinuousEncoderParams, type ContinuousParams } from "./pipelines/continuous-model.ts";
export { captionIds, captionImages, disposeContinuousCaptioner, evaluateContinuousCaptioner, runContinuousCaptioning, trainContinuousCaptioner, type ContinuousCaptioner, type ContinuousCaptionReport, type ContinuousEvaluation, type ContinuousTrainOptions } from "./pipelines/continuous.ts";
