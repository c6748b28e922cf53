#!/usr/bin/env bash
# Check the whole CUDA path on one GPU in at most 10 minutes and print one
# table (mmcv CUDA ops, pytest -m cuda, NCCL pretraining + mmdet / mmseg
# steps, train_speed goals). See mmmask/utils/gpu_check.py.
#
#   bash tools/gpu_check.sh [--budget 600] [--batch 64] [--out table.md]
#
# Without CUDA it says so in one line and exits 0. PYTHON: the interpreter
# (default: the checkout's .venv, else python on PATH).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"
  else PYTHON=$(command -v python || command -v python3); fi
fi
export PYTHON
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
exec "$PYTHON" -m mmmask.utils.gpu_check "$@"
