#!/usr/bin/env bash
# Download the wheels bench/gpu needs on a bare GPU image (bench/gpu-packages.txt) into .whl/.
#
#   bash bench/gpu_wheels.sh                 # here, with pip and a network
#   # there (no network): install them beside the image's torch, then run the benchmark
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
#     PYTHONPATH=/tmp/site:shared:. python3 -m bench.gpu
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p .whl
grep -v '^#' bench/gpu-packages.txt | grep -v '^$' | while read -r spec; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
done
ls .whl
