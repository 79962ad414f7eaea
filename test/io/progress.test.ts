import { describe, expect, it } from "vitest";
import { formatDuration, Progress, stepProgress } from "../../src/io/progress.ts";

/** A Progress on a fake clock (seconds) that records what it writes. */
const fake = (opts: { total: number; tty: boolean; label?: string }) => {
  const clock = { t: 100 };
  const out: string[] = [];
  const bar = new Progress({ label: opts.label ?? "train", total: opts.total, tty: opts.tty, now: () => clock.t, write: (s) => void out.push(s) });
  return { bar, clock, out };
};

describe("formatDuration", () => {
  it.each([
    [0, "0:00"],
    [44, "0:44"],
    [44.6, "0:45"],
    [600, "10:00"],
    [3723, "1:02:03"],
    [-3, "0:00"],
    [Infinity, "?"],
    [NaN, "?"],
  ])("%s s → %s", (s, text) => expect(formatDuration(s)).toBe(text));
});

describe("Progress", () => {
  it("formats bar, percent, count, rate, ETA and fields", () => {
    const { bar, clock } = fake({ total: 1000, tty: false });
    clock.t += 36.6; // 450 steps at 12.3 it/s
    bar.tick(450, { loss: 0.23149, step: 450, phase: "warmup" });
    expect(bar.line()).toBe("train [#########-----------] 45% 450/1000 12.3 it/s ETA 0:45 loss 0.231 step 450 phase warmup");
  });

  it("before the first tick shows an unknown ETA; at 0 total it is complete", () => {
    expect(fake({ total: 10, tty: false }).bar.line()).toBe("train [--------------------] 0% 0/10 0.00 it/s ETA ?");
    expect(fake({ total: 0, tty: false }).bar.line()).toMatch(/^train \[#{20}\] 100% 0\/0 /);
  });

  it("on a TTY redraws in place at most every 100 ms, keeping the latest fields", () => {
    const { bar, clock, out } = fake({ total: 100, tty: true });
    for (let i = 0; i < 100; i++) {
      clock.t += 0.01; // 10 ms per step → one redraw per ~10 steps
      bar.tick(1, { loss: 1 / (i + 1) });
    }
    expect(out.length).toBeGreaterThanOrEqual(9);
    expect(out.length).toBeLessThanOrEqual(11);
    for (const s of out) expect(s).toMatch(/^\rtrain \[.*\x1b\[K$/);
    clock.t += 0.001;
    bar.done();
    expect(out.at(-1)).toBe("\rtrain [####################] 100% 100/100 99.9 it/s ETA 0:00 loss 0.0100 (done in 0:01)\x1b[K\n");
  });

  it("off a TTY prints a plain line at most every 10%", () => {
    const { bar, clock, out } = fake({ total: 1000, tty: false, label: "vq" });
    for (let i = 0; i < 1000; i++) {
      clock.t += 0.1;
      bar.tick();
    }
    bar.done({ recon: 0.01234 });
    expect(out.length).toBe(11 + 1); // 0%, 10%, …, 100%, then done
    expect(out.every((s) => s.endsWith("\n") && !s.includes("\r"))).toBe(true);
    expect(out[1]).toBe("vq [##------------------] 10% 100/1000 10.0 it/s ETA 1:30\n");
    expect(out.at(-1)).toBe("vq [####################] 100% 1000/1000 10.0 it/s ETA 0:00 recon 0.0123 (done in 1:40)\n");
  });

  it("ignores ticks after done and prints done once", () => {
    const { bar, out } = fake({ total: 2, tty: false });
    bar.tick(2);
    bar.done();
    bar.done();
    bar.tick();
    expect(out.length).toBe(2);
  });

  it("rejects a negative total", () => {
    expect(() => new Progress({ label: "x", total: -1 })).toThrow('Progress "x": total must be ≥ 0, got -1');
  });
});

describe("stepProgress", () => {
  it("counts from the first step it sees (a resumed run) and finishes at the last", () => {
    const lines: string[] = [];
    const origWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (lines.push(s), true)) as typeof process.stderr.write;
    try {
      const onStep = stepProgress("tok");
      for (let s = 6; s < 10; s++) onStep(s, 10, { recon: 0.5, usage: 1, loss: 2 });
    } finally {
      process.stderr.write = origWrite;
    }
    const last = lines.join("").trim().split(/[\r\n]+/).at(-1)!;
    expect(last).toMatch(/^tok \[#{20}\] 100% 4\/4 .* recon 0\.500 usage 1 \(done in/);
    expect(last).not.toMatch(/loss/);
  });
});
