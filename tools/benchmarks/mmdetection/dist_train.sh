#!/usr/bin/env bash
# Fine-tune with mmdet from a pretrained mmmask checkpoint on one node.
#
#   bash tools/benchmarks/mmdetection/dist_train.sh CONFIG PRETRAIN GPUS [train.py args...]
#
# PRETRAIN: the mmmask checkpoint (or extract_backbone_weights.py output);
# it fills every init_cfg=dict(type='Pretrained', prefix='backbone.') of the
# config ('none': random init). GPUS processes via torchrun. Environment:
# NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (free port),
# PYTHON (python). Fewer GPUs than the config's recipe: see the batch /
# learning-rate note at the top of each config (or pass --auto-scale-lr).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: bash $0 CONFIG PRETRAIN GPUS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
PRETRAIN=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -z "${PORT:-}" ]; then
  if [ "$NNODES" = 1 ]; then
    PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
  else
    PORT=29500
  fi
fi

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$HERE/train.py" "$CONFIG" --pretrained "$PRETRAIN" \
    --launcher pytorch "${@:4}"
