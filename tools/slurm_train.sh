#!/usr/bin/env bash
# Training on a Slurm cluster.
#
#   [GPUS=8] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
#
# Environment overrides: GPUS (8, tasks in all), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments), PYTHON (python).
set -euxo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch_common.sh
source "$HERE/launch_common.sh"

launch_need_args 4 'PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]' "$@"
launch_srun "$LAUNCH_ROOT" "$1" "$2" "$HERE/train.py" "$3" \
    --work-dir="$4" --launcher=slurm "${@:5}"
