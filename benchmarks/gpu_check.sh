#!/usr/bin/env bash
# The prepared device check in one command (issue 15; docs/performance.md, "The device check").
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # default: $OUT/gpu_check, else benchmarks/out/gpu_check
# PYTHON picks the interpreter (default: python3). The check's own guard skips the sections
# left after --budget-s; the outer timeout is a backstop so the report dir is the only output.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py="${PYTHON:-python3}"
out="${1:-${OUT:-benchmarks/out}/gpu_check}"
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not available" >> "$out/nvidia-smi.txt"
timeout 540 "$py" benchmarks/gpu_check.py --out "$out" --budget-s 420 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
