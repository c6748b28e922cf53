#!/usr/bin/env bash
# Multi-process training on one or more nodes with torchrun.
#
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# GPUS processes per node. Environment overrides: NNODES (1), NODE_RANK (0),
# MASTER_ADDR (127.0.0.1), PORT (a free port on one node, else 29500),
# PYTHON (python). Without CUDA it starts GPUS CPU processes that train with
# the gloo backend (tools/train.py sets that up).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: bash $0 CONFIG GPUS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -z "${PORT:-}" ]; then
  if [ "$NNODES" = 1 ]; then
    PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
  else
    PORT=29500  # every node must use the same port
  fi
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
