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
