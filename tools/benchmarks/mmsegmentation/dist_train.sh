#!/usr/bin/env bash
# Fine-tune with mmseg from a pretrained mmmask checkpoint on one node.
#
#   bash tools/benchmarks/mmsegmentation/dist_train.sh CONFIG PRETRAIN GPUS [train.py args...]
#
# PRETRAIN: the mmmask checkpoint (or extract_backbone_weights.py output);
# it fills every init_cfg=dict(type='Pretrained', prefix='backbone.') of the
# config ('none': random init). GPUS processes via torchrun. Environment:
# NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (free port),
# PYTHON (python). Fewer GPUs than the config's recipe: see the batch /
# learning-rate note at the top of each config (or pass --auto-scale-lr).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../launch_common.sh
source "$HERE/../../launch_common.sh"
launch_benchmark_torchrun "$HERE/train.py" "$@"
