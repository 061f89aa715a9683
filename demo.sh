#!/usr/bin/env bash
# voxlora demo: the whole pipeline end to end, on a small speech corpus made offline.
#
#   bash demo.sh [OUT_DIR]      # `make demo` runs it with OUT_DIR=demo-out and .venv/bin first on PATH
#
# Each numbered step is one shell command line that reads the files the steps before it wrote,
# exactly as a user would type it; logs go to stderr, each step's result is printed on stdout.
set -euo pipefail

OUT="${1:-demo-out}"
mkdir -p "$OUT"

# 1. A small speech corpus: 20 sentences spoken by hibari-tts (offline, deterministic), saved as a
#    local Hugging Face dataset (save_to_disk), the kind of folder hf-fetch reads like a Hub id.
echo "== 1. speech corpus -> $OUT/dataset" >&2
python -m voxlora.demo_corpus "$OUT/dataset"

# 2. Fetch the clips as WAVs, then check them and resample to CSM's 24 kHz mono: the training manifest.
echo "== 2. hf-fetch | mkmanifest -> $OUT/train.jsonl" >&2
hf-fetch "$OUT/dataset" --out-dir "$OUT/clips" \
  | mkmanifest - --sample-rate 24000 --out-dir "$OUT/wav24" > "$OUT/train.jsonl"
python - "$OUT/train.jsonl" <<'EOF'
import sys

from voxlora.manifest import read_manifest

records, _ = read_manifest(sys.argv[1], strict=True)
seconds = sum(r["duration"] for r in records)
print(f"manifest: {sys.argv[1]} ({len(records)} clips, {seconds:.1f} s of 24 kHz mono speech)")
EOF

# 3. A tiny CSM made by code (a few hundred thousand parameters, in sesame/csm-1b's exact layout, so
#    every command treats it like the real one), and a fresh LoRA adapter for it (B = 0: no change yet).
echo "== 3. tiny CSM + lora-init -> $OUT/tiny-csm, $OUT/a0" >&2
python -c 'import sys; from voxlora.demo_model import write_tiny_csm; write_tiny_csm(sys.argv[1], seed=0)' \
  "$OUT/tiny-csm"
lora-init --model "$OUT/tiny-csm" --targets all-linear,codebook0_head -r 16 --alpha 16 -o "$OUT/a0"

# 4. Train the adapter on the manifest: metrics JSONL on stdout (kept in train.out), the adapter,
#    metrics.jsonl and loss.png in $OUT/a1. One thread: faster than many for a model this small.
echo "== 4. lora-train -> $OUT/a1" >&2
OMP_NUM_THREADS=1 lora-train --model "$OUT/tiny-csm" --adapter "$OUT/a0" --manifest "$OUT/train.jsonl" \
  -o "$OUT/a1" --max-steps 60 --lr 3e-3 --log-every 10 > "$OUT/train.out"
python - "$OUT/train.out" <<'EOF'
import json
import sys

records = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
for r in records:
    if "loss" in r:
        print(f"step {r['step']:3d}  loss {r['loss']:.3f}  ({r['audio_s_per_s']:.0f} s of audio per s)")
print(f"adapter: {records[-1]['adapter']} (step {records[-1]['step']})")
EOF

# 5. Speak a new sentence with the freshly trained adapter (applied through peft on the base): one
#    WAV at the model's 24 kHz and one JSONL record describing it. The tiny model's random weights
#    make noise, not words; the same command with --model sesame/csm-1b makes speech.
echo "== 5. synth -> $OUT/hello.wav" >&2
OMP_NUM_THREADS=1 synth --model "$OUT/tiny-csm" --adapter "$OUT/a1" --max-seconds 3 \
  "Hello from the fine-tuned voice." -o "$OUT/hello.wav" > "$OUT/hello.jsonl"
python - "$OUT/hello.jsonl" <<'EOF'
import json
import sys

r = json.loads(open(sys.argv[1], encoding="utf-8").readline())
print(f"speech: {r['audio']} ({r['duration']:.2f} s at {r['sample_rate']} Hz, adapter {r['adapter']})")
EOF
