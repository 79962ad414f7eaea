/**
 * Speech data sets: a user's folder of WAV files with a transcript, and the project's own spoken
 * digits (data/speech/, made by scripts/make-speech.ts with espeak-ng and committed).
 *
 * A folder's transcript is `transcript.tsv`: one line per clip, its path relative to the folder,
 * a tab, its text. The transcript and the folder must match: every listed file exists, none is
 * listed twice, no text is empty, and no WAV file under the folder is left out (a clip silently
 * dropped from training is a bug someone has to find later). Every refusal names the file and
 * the line. Clips are read by io/wav.ts (mono, resampled to the rate asked for).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { readRegularFile } from "../io/checkpoint.ts";
import { InputError } from "../io/errors.ts";
import { readWav } from "../io/wav.ts";
import { DIGIT_WORDS } from "./captions.ts";

/** `voice`: who spoke it, where the transcript says (its optional third column). */
export type SpeechClip = { readonly file: string; readonly text: string; readonly samples: Float32Array; readonly voice?: string };
export type SpeechSet = { readonly sampleRate: number; readonly clips: readonly SpeechClip[] };

export const TRANSCRIPT_FILE = "transcript.tsv";
/** The project's spoken digits. */
export const SPEECH_DIR = new URL("../../data/speech/", import.meta.url).pathname;

/** Every *.wav under `dir` (any depth), as paths relative to it with "/" separators, sorted. */
function wavFiles(dir: string, under = dir): string[] {
  return readdirSync(under)
    .flatMap((name) => {
      const path = join(under, name);
      if (statSync(path).isDirectory()) return wavFiles(dir, path);
      return name.toLowerCase().endsWith(".wav") ? [relative(dir, path).split(sep).join("/")] : [];
    })
    .sort();
}

/**
 * The transcript's (file, text[, voice]) entries, checked against the folder: one line per clip,
 * "<file.wav><TAB><text>", optionally "<TAB><voice>" (a speaker name: voice prompts pair clips of
 * one voice).
 */
export function readTranscript(dir: string, transcript = TRANSCRIPT_FILE): { file: string; text: string; voice?: string }[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`${dir} is not a folder of WAV files`, { file: dir });
  const path = join(dir, transcript);
  if (!existsSync(path)) throw new InputError(`${dir} has no ${transcript}: expected one line per clip, "<file.wav><TAB><text>"`, { file: path });
  const lines = readRegularFile(path, 64 * 2 ** 20).toString("utf8").split(/\r?\n/);
  const entries: { file: string; text: string; voice?: string }[] = [];
  const seen = new Map<string, number>();
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const at = `${path}:${i + 1}`;
    const tab = line.indexOf("\t");
    if (tab < 0) throw new InputError(`${at}: expected "<file.wav><TAB><text>", got ${JSON.stringify(line.slice(0, 80))}`, { file: path, field: `line ${i + 1}` });
    const file = line.slice(0, tab).trim();
    const [said = "", who] = line.slice(tab + 1).split("\t");
    const text = said.trim();
    const voice = who?.trim();
    if (!file.toLowerCase().endsWith(".wav")) throw new InputError(`${at}: ${JSON.stringify(file)} is not a .wav file`, { file: path, field: `line ${i + 1}`, value: file });
    if (file.split("/").includes("..") || file.startsWith("/")) throw new InputError(`${at}: ${JSON.stringify(file)} must be a path inside ${dir}`, { file: path, field: `line ${i + 1}`, value: file });
    if (text === "") throw new InputError(`${at}: ${file} has an empty transcript`, { file: path, field: `line ${i + 1}` });
    if (seen.has(file)) throw new InputError(`${at}: ${file} is listed twice (first on line ${seen.get(file)})`, { file: path, field: `line ${i + 1}`, value: file });
    if (!existsSync(join(dir, file))) throw new InputError(`${at}: ${file} is listed but not in ${dir}`, { file: path, field: `line ${i + 1}`, value: file });
    seen.set(file, i + 1);
    entries.push({ file, text, ...(voice && { voice }) });
  });
  if (entries.length === 0) throw new InputError(`${path} lists no clips`, { file: path });
  const unlisted = wavFiles(dir).filter((f) => !seen.has(f));
  if (unlisted.length > 0) throw new InputError(`${path} does not match ${dir}: ${unlisted.length} WAV file${unlisted.length > 1 ? "s are" : " is"} not listed (${unlisted.slice(0, 3).join(", ")}${unlisted.length > 3 ? ", …" : ""})`, { file: path, value: unlisted[0] });
  return entries;
}

/** A folder of WAV files with its transcript, every clip mono at `sampleRate`. */
export function loadSpeechFolder(dir: string, { sampleRate = 16000, transcript = TRANSCRIPT_FILE }: { sampleRate?: number; transcript?: string } = {}): SpeechSet {
  const clips = readTranscript(dir, transcript).map((e) => ({ ...e, samples: readWav(join(dir, e.file), { sampleRate }).samples }));
  return { sampleRate, clips };
}

/** One clip of the spoken digits (manifest.json): who said what, how. */
export type DigitClipInfo = { file: string; text: string; word: string; speaker: string; speed: number; pitch: number; seconds: number; split: "train" | "test" };
/** `voice`: speaker and pitch ("en-us+m1 p35"), what a voice prompt should carry over (speed is the speaker's choice per utterance). */
export type DigitClip = SpeechClip & { readonly label: number; readonly speaker: string; readonly voice: string };
export type SpokenDigits = { readonly sampleRate: number; readonly clips: readonly DigitClip[] };

/** The project's spoken digits, split by speaker (manifest.json: 4 of 16 speakers held out). */
export function loadSpokenDigits(dir = SPEECH_DIR): { train: SpokenDigits; test: SpokenDigits } {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { sampleRate: number; clips: DigitClipInfo[] };
  const set = loadSpeechFolder(dir, { sampleRate: manifest.sampleRate });
  const info = new Map(manifest.clips.map((c) => [c.file, c]));
  const labelled = set.clips.map((c) => {
    const m = info.get(c.file);
    if (!m) throw new InputError(`${join(dir, "manifest.json")} has no entry for ${c.file}`, { file: join(dir, "manifest.json"), value: c.file });
    return { ...c, label: (DIGIT_WORDS as readonly string[]).indexOf(m.word), speaker: m.speaker, voice: `${m.speaker} p${m.pitch}`, split: m.split };
  });
  const part = (split: "train" | "test"): SpokenDigits => ({ sampleRate: set.sampleRate, clips: labelled.filter((c) => c.split === split).map(({ split: _, ...c }) => c) });
  return { train: part("train"), test: part("test") };
}
