#!/usr/bin/env bash
# The scale-out round trip of docs/scale-out.md, end to end on one machine: export a run and a
# training shard, continue training in PyTorch on 1 process and on 2 (torchrun, DDP over gloo),
# import the 2-process model back into a run, and score both runs on the held-out digits.
# Prints one JSON object (step times, losses, scores). Needs Debian's python3-torch.
#
#   scripts/scale-out.sh [RUN=runs/demo] [STEPS=200] [OUT=runs/scale-out]
set -euo pipefail
RUN=${1:-runs/demo}
STEPS=${2:-200}
OUT=${3:-runs/scale-out}
PY=/usr/bin/python3
# torchrun itself where it works; Debian's PyTorch 1.13 on Python 3.11 needs the one-line fix in
# reference/torchrun.py (same arguments).
TORCHRUN=${TORCHRUN:-"$PY reference/torchrun.py"}
"$PY" -c "import torch" 2>/dev/null || { echo "scale-out.sh needs PyTorch: apt-get install python3-torch" >&2; exit 2; }
mmntp() { node bin/mmntp.js "$@"; }
rm -rf "$OUT" && mkdir -p "$OUT"
mmntp export "$RUN" --format torch --data $((STEPS * 32)) -o "$OUT/export" >&2
"$PY" reference/train_torch.py --model "$OUT/export" --steps "$STEPS" --out "$OUT/trained-1" > "$OUT/train-1.json"
$TORCHRUN --nproc_per_node=2 reference/train_torch.py --model "$OUT/export" --steps "$STEPS" --out "$OUT/trained-2" > "$OUT/train-2.json"
mmntp import "$OUT/trained-2" --run "$RUN" --out "$OUT/run" >&2
mmntp evaluate --run "$RUN" --json > "$OUT/eval-before.json"
mmntp evaluate --run "$OUT/run" --json > "$OUT/eval-after.json"
node -e '
const fs = require("fs"), out = process.argv[1], read = (f) => JSON.parse(fs.readFileSync(`${out}/${f}`, "utf8"));
const [one, two, before, after] = ["train-1.json", "train-2.json", "eval-before.json", "eval-after.json"].map(read);
const pick = (e) => ({ caption_accuracy: e.caption_accuracy, generation_accuracy: e.generation_accuracy });
console.log(JSON.stringify({ steps: one.steps, batch: one.batch, lr: one.lr, step_ms: { one_process: one.step_ms, two_processes: two.step_ms }, threads: { one_process: one.threads, two_processes: two.threads }, loss: { one_process: [one.first_loss, one.last_loss], two_processes: [two.first_loss, two.last_loss] }, before: pick(before), after_torch: pick(after), caption_change_points: 100 * (after.caption_accuracy - before.caption_accuracy) }, null, 2));
' "$OUT"
