#!/usr/bin/env bash
# voxlora demo for Higgs Audio v2: the same pipeline as demo.sh, on a tiny Higgs made by code.
#
#   bash demo-higgs.sh [OUT_DIR]   # `make demo-higgs` runs it with OUT_DIR=demo-higgs-out, .venv/bin on PATH
#
# The tiny model is transformers' HiggsAudioV2ForConditionalGeneration + HiggsAudioV2Processor (with a
# tiny HiggsAudioV2TokenizerModel) saved with save_pretrained: every command treats it like
# bosonai/higgs-audio-v2-generation-3B-base. Its random weights make noise, not words.
set -euo pipefail

OUT="${1:-demo-higgs-out}"
mkdir -p "$OUT"

echo "== 1. speech corpus -> $OUT/train.jsonl (24 kHz mono) and its ChatML pairs" >&2
python -m voxlora.demo_corpus "$OUT/dataset"
hf-fetch "$OUT/dataset" --out-dir "$OUT/clips" \
  | mkmanifest - --sample-rate 24000 --out-dir "$OUT/wav24" > "$OUT/train.jsonl"
mkmanifest "$OUT/train.jsonl" --to chatml > "$OUT/chatml.jsonl"
echo "manifest: $(wc -l < "$OUT/train.jsonl") clips, $(wc -l < "$OUT/chatml.jsonl") voice-cloning pairs"

echo "== 2. tiny Higgs Audio v2 -> $OUT/tiny-higgs; lora-train --dry-run" >&2
python -c 'import sys; from tests.higgs.tiny import write_tiny_higgs_hf; write_tiny_higgs_hf(sys.argv[1])' \
  "$OUT/tiny-higgs"
lora-train --model "$OUT/tiny-higgs" --manifest "$OUT/chatml.jsonl" -o "$OUT/h1" --dry-run --dtype bf16

echo "== 3. lora-train on the ChatML pairs (loss on the target turn, the reference as context) -> $OUT/h1" >&2
OMP_NUM_THREADS=1 lora-train --model "$OUT/tiny-higgs" --manifest "$OUT/chatml.jsonl" -o "$OUT/h1" \
  --targets attn,audio-ffn -r 8 --max-steps 30 --lr 3e-3 --log-every 10 --save-mode both > "$OUT/train.out"
python - "$OUT/train.out" <<'PY'
import json
import sys

records = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
for r in records:
    if "loss" in r:
        print(f"step {r['step']:3d}  loss {r['loss']:.3f}")
print(f"adapter: {records[-1]['adapter']} (step {records[-1]['step']}); merged model in {records[-1]['adapter']}/merged")
PY

echo "== 4. synth: voice cloning from a reference clip, with the adapter, direct and merged" >&2
REF="$(python -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["audio"])' "$OUT/train.jsonl")"
for MODE in "" "--merge"; do
  OMP_NUM_THREADS=1 synth --model "$OUT/tiny-higgs" --adapter "$OUT/h1" $MODE --context "$REF" \
    --context-text "A reference sentence." --max-seconds 3 --seed 7 "Hello from the fine-tuned voice." \
    -o "$OUT/hello${MODE:+-merged}.wav"
done
