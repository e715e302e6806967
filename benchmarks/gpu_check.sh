#!/usr/bin/env bash
# Issue 15's check on a machine with CUDA, in under 5 minutes, one table at the end:
#   1. the exactness tests on CUDA: cached == full forward, compiled step == eager step in
#      float32 (1e-4) and bfloat16 (tests/blt_model/inference/test_compiled_gpu.py);
#   2. the generation benchmark on CUDA: the tiny preset, cached and compiled engines, and
#      BLT-1B's shape with random bf16 weights (cached engine, 64 bytes).
# Its numbers are not claimed in the README until it has run on a GPU. The fine-tuning issue
# adds its own steps below.
#
#   bash benchmarks/gpu_check.sh            # writes runs/bench/gpu_check.json
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device here')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

echo "== exactness on CUDA"
timeout 180 python -m pytest -q -m gpu tests/blt_model/inference/test_compiled_gpu.py

echo "== generation on CUDA"
timeout 240 python benchmarks/generation.py --device cuda --presets tiny --prompt-lengths 1024,4096 \
    --new-bytes 256 --no-hf --no-nocache --threads 1 --blt1b --json runs/bench/gpu_check.json
