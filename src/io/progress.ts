/**
 * A progress bar for long work, on stderr:
 *
 *   label [#########-----------] 45% 450/1000 12.3 it/s ETA 0:44 loss 0.231
 *
 * On a TTY the line is redrawn in place (`\r`) at most every ~100 ms; otherwise (CI logs, pipes)
 * a plain line is printed at most once per 10% so logs stay short. `done()` always prints.
 */

/** Seconds → "0:44", "12:05", "1:02:03"; "?" when unknown (not finite). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export type Fields = Record<string, number | string>;

// Integers as they are, other numbers with 3 significant digits (0.231, 12.3, 1.23e-5).
const formatField = (v: number | string) =>
  typeof v === "string" || Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(3);

const BAR = 20;
const TTY_INTERVAL_S = 0.1;

export type ProgressOptions = {
  label: string;
  /** Number of ticks that make 100%. */
  total: number;
  /** Clock in seconds (injectable for tests). */
  now?: () => number;
  /** Redraw in place; defaults to whether stderr is a terminal. */
  tty?: boolean;
  /** Where lines go; defaults to stderr. */
  write?: (s: string) => void;
};

export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #now: () => number;
  readonly #tty: boolean;
  readonly #write: (s: string) => void;
  readonly #start: number;
  #count = 0;
  #fields: Fields = {};
  #lastDraw = -Infinity;
  #lastDecile = -1;
  #finished = false;

  constructor({ label, total, now = () => performance.now() / 1000, tty = Boolean(process.stderr.isTTY), write = (s) => void process.stderr.write(s) }: ProgressOptions) {
    if (!(total >= 0)) throw new Error(`Progress "${label}": total must be ≥ 0, got ${total}`);
    this.#label = label;
    this.#total = total;
    this.#now = now;
    this.#tty = tty;
    this.#write = write;
    this.#start = now();
  }

  /** The current status line (no `\r` or newline); `fields` are shown after the ETA. */
  line(): string {
    const elapsed = this.#now() - this.#start;
    const frac = this.#total > 0 ? Math.min(1, this.#count / this.#total) : 1;
    const filled = Math.round(frac * BAR);
    const rate = elapsed > 0 ? this.#count / elapsed : 0;
    const eta = rate > 0 ? Math.max(0, this.#total - this.#count) / rate : Infinity;
    const extra = Object.entries(this.#fields).map(([k, v]) => ` ${k} ${formatField(v)}`).join("");
    const bar = `${"#".repeat(filled)}${"-".repeat(BAR - filled)}`;
    return `${this.#label} [${bar}] ${Math.floor(frac * 100)}% ${this.#count}/${this.#total} ${rate.toFixed(rate < 1 ? 2 : 1)} it/s ETA ${formatDuration(eta)}${extra}`;
  }

  /** Advance by `n`; `fields` (e.g. `{ loss }`) replace earlier values of the same name. */
  tick(n = 1, fields?: Fields): void {
    if (this.#finished) return;
    this.#count += n;
    if (fields) this.#fields = { ...this.#fields, ...fields };
    if (this.#tty) {
      const t = this.#now();
      if (t - this.#lastDraw < TTY_INTERVAL_S) return;
      this.#lastDraw = t;
      this.#write(`\r${this.line()}\x1b[K`);
    } else {
      const decile = Math.floor((10 * this.#count) / Math.max(1, this.#total));
      if (decile === this.#lastDecile) return;
      this.#lastDecile = decile;
      this.#write(`${this.line()}\n`);
    }
  }

  /** Print the final line with the elapsed time; later ticks are ignored. */
  done(fields?: Fields): void {
    if (this.#finished) return;
    this.#finished = true;
    if (fields) this.#fields = { ...this.#fields, ...fields };
    const elapsed = formatDuration(this.#now() - this.#start);
    this.#write(this.#tty ? `\r${this.line()} (done in ${elapsed})\x1b[K\n` : `${this.line()} (done in ${elapsed})\n`);
  }
}

/**
 * An `onStep(step, total, fields)` callback that draws a Progress bar labelled `label`, made at the
 * first step it sees (a resumed run starts its count there) and finished at the last.
 */
export function stepProgress(label: string, show: readonly string[] = ["recon", "usage"]): (step: number, total: number, fields: Record<string, number>) => void {
  let bar: Progress | undefined;
  return (step, total, fields) => {
    bar ??= new Progress({ label, total: total - step });
    bar.tick(1, Object.fromEntries(show.filter((k) => fields[k] !== undefined).map((k) => [k, fields[k]!])));
    if (step === total - 1) bar.done();
  };
}
