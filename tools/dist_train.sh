#!/usr/bin/env bash
# Multi-process training on one or more nodes with torchrun.
#
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# GPUS processes per node. Environment overrides: NNODES (1), NODE_RANK (0),
# MASTER_ADDR (127.0.0.1), PORT or MASTER_PORT (a free port on one node,
# else 29500; the same on every node),
# PYTHON (python). Without CUDA it starts GPUS CPU processes that train with
# the gloo backend (tools/train.py sets that up).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch_common.sh
source "$HERE/launch_common.sh"

launch_need_args 2 'CONFIG GPUS [train.py args...]' "$@"
launch_torchrun "$LAUNCH_ROOT" "$2" "$HERE/train.py" "$1" \
    --launcher pytorch "${@:3}"
