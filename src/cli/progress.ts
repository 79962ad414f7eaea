/** A progress bar on stderr with rate, ETA and live fields; plain lines (every ~10%) when not a TTY. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

const fmtField = (v: number | string) => (typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3)) : v);

export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #now: () => number;
  readonly #tty: boolean;
  readonly #write: (s: string) => void;
  readonly #start: number;
  #count = 0;
  #lastDraw = -Infinity;
  #lastDecile = -1;

  constructor({ label, total, now = () => performance.now() / 1000, tty = Boolean(process.stderr.isTTY), write = (s: string) => void process.stderr.write(s) }: { label: string; total: number; now?: () => number; tty?: boolean; write?: (s: string) => void }) {
    this.#label = label;
    this.#total = total;
    this.#now = now;
    this.#tty = tty;
    this.#write = write;
    this.#start = now();
  }

  /** The status line, e.g. `label [#####-----] 45% 450/1000 12.3 it/s ETA 0:44 loss 0.231`. */
  line(fields: Record<string, number | string> = {}): string {
    const elapsed = this.#now() - this.#start;
    const frac = this.#total > 0 ? Math.min(1, this.#count / this.#total) : 1;
    const filled = Math.round(frac * 20);
    const rate = elapsed > 0 ? this.#count / elapsed : 0;
    const eta = rate > 0 ? (this.#total - this.#count) / rate : 0;
    const extra = Object.entries(fields).map(([k, v]) => ` ${k} ${fmtField(v)}`).join("");
    return `${this.#label} [${"#".repeat(filled)}${"-".repeat(20 - filled)}] ${Math.round(frac * 100)}% ${this.#count}/${this.#total} ${rate.toFixed(1)} it/s ETA ${formatDuration(eta)}${extra}`;
  }

  tick(n = 1, fields?: Record<string, number | string>): void {
    this.#count += n;
    const t = this.#now();
    if (this.#tty) {
      if (t - this.#lastDraw < 0.1) return;
      this.#lastDraw = t;
      this.#write(`\r${this.line(fields)}\x1b[K`);
    } else {
      const decile = Math.floor((10 * this.#count) / Math.max(1, this.#total));
      if (decile === this.#lastDecile) return;
      this.#lastDecile = decile;
      this.#write(`${this.line(fields)}\n`);
    }
  }

  done(fields?: Record<string, number | string>): void {
    const elapsed = formatDuration(this.#now() - this.#start);
    this.#write(`${this.#tty ? "\r" : ""}${this.line(fields)} (done in ${elapsed})${this.#tty ? "\x1b[K" : ""}\n`);
  }
}
