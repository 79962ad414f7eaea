/**
 * jax-js's compiled programs as text (`JitProgram.toString()`, printed at `setDebug(4)`), parsed
 * into their steps and replayed for memory: which buffers are live after each step. Only the
 * printout's step lines are read:
 *
 *   %12 = malloc <4194304 bytes>
 *   execute (0: %3, 1: %7) -> %12, kernel        (the kernel's body follows, indented)
 *   execute (0: %12) -> %13, %14, routine Sort
 *   incref 12
 *   free 12
 */

export type ProgramStep =
  | { type: "malloc"; id: number; bytes: number }
  | { type: "execute"; inputs: number[]; outputs: number[]; kind: string }
  | { type: "incref"; id: number }
  | { type: "free"; id: number };

export type ParsedProgram = { inputs: number[]; outputs: number[]; steps: ProgramStep[] };

const ids = (text: string) => [...text.matchAll(/%(\d+)/g)].map((m) => Number(m[1]));

/** What an executed kernel is, from its printed body: a reduction of a product (a contraction), another reduction, or elementwise. */
function kernelKind(body: string[]): string {
  const reduction = body.map((l) => /reduction = (\w+)\{([\d,]+)\}/.exec(l)).find(Boolean);
  if (!reduction) return "elementwise";
  const exp = body.find((l) => l.includes("exp ="))?.trim() ?? "";
  const product = reduction[1] === "Add" && /GV_\d+<[^>]*>\{[^}]*\}\[[^\]]*\] \* GV_\d+/.test(exp);
  return `${product ? "contraction" : `reduce ${reduction[1]}`} K=${reduction[2]}`;
}

/** Parses one printed program; throws, quoting the line, on a step line it does not know. */
export function parseJitProgram(text: string): ParsedProgram {
  const lines = text.split("\n");
  const header = (name: string) => ids(lines.find((l) => l.trim().startsWith(`${name} = [`))?.replace(/(\d+)/g, "%$1") ?? "");
  const steps: ProgramStep[] = [];
  const start = lines.findIndex((l) => l.trim() === "steps =");
  if (start < 0) throw new Error("parseJitProgram: no `steps =` line in the printout");
  const indent = (l: string) => l.length - l.trimStart().length;
  const stepIndent = indent(lines[start + 1] ?? "");
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (indent(line) !== stepIndent) continue; // a kernel's body
    const t = line.trim().replace(/ }$/, "");
    let m: RegExpExecArray | null;
    if ((m = /^%(\d+) = malloc <(\d+) bytes>$/.exec(t))) steps.push({ type: "malloc", id: Number(m[1]), bytes: Number(m[2]) });
    else if ((m = /^execute \((.*)\) -> (.*?), (kernel|routine (\w+))$/.exec(t))) {
      const body: string[] = [];
      for (let j = i + 1; j < lines.length && indent(lines[j]!) > stepIndent; j++) body.push(lines[j]!);
      steps.push({ type: "execute", inputs: ids(m[1]!), outputs: ids(m[2]!), kind: m[4] ? `routine ${m[4]}` : kernelKind(body) });
    } else if ((m = /^incref (\d+)$/.exec(t))) steps.push({ type: "incref", id: Number(m[1]) });
    else if ((m = /^free (\d+)$/.exec(t))) steps.push({ type: "free", id: Number(m[1]) });
    else if (t !== "" && t !== "}") throw new Error(`parseJitProgram: unknown step line "${t}"`);
  }
  return { inputs: header("inputs"), outputs: header("outputs"), steps };
}

export type Replay = {
  kernels: number;
  routines: number;
  mallocs: number;
  mallocBytes: number;
  /** Live bytes after every step of the program. */
  curve: number[];
  peak: number;
  peakAt: number;
  /** Bytes of the program's outputs (malloc'd, never freed inside it). */
  outputBytes: number;
  /** Buffers live at the peak, grouped by the kernel kind that wrote them and their size; largest total first. */
  heldAtPeak: { kind: string; bytes: number; count: number; each_mib: number }[];
  /** Bytes live at the peak by where they were made: each quarter of the program's steps. */
  byBirth: { made_in: string; bytes: number; count: number }[];
};

/**
 * Replays `program`'s mallocs and frees (a buffer with increfs is freed at its last free):
 * live bytes after each step, the high-water mark and what is live there.
 */
export function replay(program: ParsedProgram, top = 12): Replay {
  const size = new Map<number, number>();
  const born = new Map<number, number>();
  const refs = new Map<number, number>();
  const writer = new Map<number, string>();
  const live = new Set<number>();
  let bytes = 0;
  let peak = 0;
  let peakAt = 0;
  let peakLive: number[] = [];
  const curve: number[] = [];
  let kernels = 0;
  let routines = 0;
  let mallocs = 0;
  let mallocBytes = 0;
  program.steps.forEach((s, i) => {
    if (s.type === "malloc") {
      size.set(s.id, s.bytes);
      born.set(s.id, i);
      refs.set(s.id, 1);
      live.add(s.id);
      bytes += s.bytes;
      mallocs++;
      mallocBytes += s.bytes;
    } else if (s.type === "execute") {
      if (s.kind.startsWith("routine")) routines++;
      else kernels++;
      for (const o of s.outputs) writer.set(o, s.kind);
    } else if (s.type === "incref") {
      refs.set(s.id, (refs.get(s.id) ?? 1) + 1);
    } else if (live.has(s.id)) {
      const n = (refs.get(s.id) ?? 1) - 1;
      refs.set(s.id, n);
      if (n === 0) {
        live.delete(s.id);
        bytes -= size.get(s.id)!;
      }
    }
    curve.push(bytes);
    if (bytes > peak) [peak, peakAt, peakLive] = [bytes, i, [...live]];
  });
  const groups = new Map<string, { kind: string; bytes: number; count: number; each_mib: number }>();
  for (const id of peakLive) {
    const kind = writer.get(id) ?? "not yet written";
    const b = size.get(id)!;
    const key = `${kind}|${b}`;
    const g = groups.get(key) ?? { kind, bytes: 0, count: 0, each_mib: Number((b / 2 ** 20).toFixed(3)) };
    g.bytes += b;
    g.count++;
    groups.set(key, g);
  }
  const n = program.steps.length;
  const byBirth = [0, 1, 2, 3].map((q) => {
    const inQuarter = peakLive.filter((id) => Math.min(3, Math.floor((4 * born.get(id)!) / n)) === q);
    return { made_in: `steps ${Math.round((q * n) / 4)}–${Math.round(((q + 1) * n) / 4) - 1}`, bytes: inQuarter.reduce((a, id) => a + size.get(id)!, 0), count: inQuarter.length };
  });
  const outputBytes = program.outputs.reduce((a, id) => a + (size.get(id) ?? 0), 0);
  return { kernels, routines, mallocs, mallocBytes, curve, peak, peakAt, outputBytes, heldAtPeak: [...groups.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top), byBirth };
}

/** A heap allocator model: `malloc` returns an address, `free` takes it back; `top` is the heap's high-water mark. */
export type AllocatorModel = { malloc: (bytes: number) => number; free: (ptr: number) => void; top: () => number };

/** jax-js's WasmAllocator with patch 5 (before patch 7): size classes, one free list each, a larger class up to 2× reused, else bump. */
export function sizeClassAllocator(): AllocatorModel {
  const lists = new Map<number, number[]>();
  const classOf = new Map<number, number>();
  let head = 64;
  const align = (n: number, a: number) => Math.ceil(n / a) * a;
  const sizeClass = (n: number) => (n <= 512 ? align(n, 64) : n <= 2048 ? align(n, 512) : n <= 65536 ? 2 ** Math.ceil(Math.log2(Math.max(n, 4096))) : align(n, 65536));
  return {
    malloc: (bytes) => {
      const c = sizeClass(bytes);
      let ptr = lists.get(c)?.pop();
      let cls = c;
      if (ptr === undefined) {
        let best: number | undefined;
        for (const [k, l] of lists) if (k > c && k <= 2 * c && l.length > 0 && (best === undefined || k < best)) best = k;
        if (best !== undefined) [ptr, cls] = [lists.get(best)!.pop()!, best];
        else [ptr, head] = [head, head + align(c, 64)];
      }
      classOf.set(ptr, cls);
      return ptr;
    },
    free: (ptr) => {
      const c = classOf.get(ptr)!;
      classOf.delete(ptr);
      const list = lists.get(c);
      if (list) list.push(ptr);
      else lists.set(c, [ptr]);
    },
    top: () => head,
  };
}

/**
 * First fit over address-ordered free blocks that are split on allocation and merged with their
 * neighbours on free (64-byte granules): what vendored patch 7 does for blocks above 64 KiB
 * (the smaller ones keep size classes there; this model treats every block alike).
 */
export function coalescingAllocator(): AllocatorModel {
  const free: { at: number; size: number }[] = []; // sorted by address, no two adjacent
  const sizes = new Map<number, number>();
  let head = 64;
  return {
    malloc: (bytes) => {
      const size = Math.ceil(bytes / 64) * 64;
      const i = free.findIndex((b) => b.size >= size);
      let ptr: number;
      if (i >= 0) {
        const b = free[i]!;
        ptr = b.at;
        if (b.size === size) free.splice(i, 1);
        else [b.at, b.size] = [b.at + size, b.size - size];
      } else [ptr, head] = [head, head + size];
      sizes.set(ptr, size);
      return ptr;
    },
    free: (ptr) => {
      const size = sizes.get(ptr)!;
      sizes.delete(ptr);
      let i = free.findIndex((b) => b.at > ptr);
      if (i < 0) i = free.length;
      free.splice(i, 0, { at: ptr, size });
      const next = free[i + 1];
      if (next && ptr + size === next.at) free.splice(i, 2, { at: ptr, size: size + next.size });
      const prev = free[i - 1];
      const cur = free[i]!;
      if (prev && prev.at + prev.size === cur.at) free.splice(i - 1, 2, { at: prev.at, size: prev.size + cur.size });
    },
    top: () => head,
  };
}

/**
 * The heap an allocator model reaches running `program` `iterations` times in a row, as a
 * training loop does: each run's outputs (the new params and optimizer state) stay allocated
 * until the end of the next run, which consumes them.
 */
export function simulateHeap(program: ParsedProgram, model: AllocatorModel, iterations = 3): number {
  let carried: number[] = [];
  for (let it = 0; it < iterations; it++) {
    const addr = new Map<number, number>();
    const refs = new Map<number, number>();
    for (const s of program.steps) {
      if (s.type === "malloc") {
        addr.set(s.id, model.malloc(s.bytes));
        refs.set(s.id, 1);
      } else if (s.type === "incref") refs.set(s.id, (refs.get(s.id) ?? 1) + 1);
      else if (s.type === "free" && addr.has(s.id)) {
        const n = refs.get(s.id)! - 1;
        refs.set(s.id, n);
        if (n === 0) {
          model.free(addr.get(s.id)!);
          addr.delete(s.id);
        }
      }
    }
    for (const p of carried) model.free(p);
    carried = program.outputs.filter((id) => addr.has(id)).map((id) => addr.get(id)!);
  }
  return model.top();
}
