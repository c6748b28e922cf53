#!/usr/bin/env bash
# Fine-tune with mmdet from a pretrained mmmask checkpoint on Slurm.
#
#   [GPUS=8] bash tools/benchmarks/mmdetection/slurm_train.sh PARTITION JOB_NAME CONFIG PRETRAIN [train.py args...]
#
# Environment: GPUS (8, tasks in all), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS, PYTHON (python). The work dir defaults to
# work_dirs/<config name>; pass --work-dir to change it.
set -euxo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../launch_common.sh
source "$HERE/../../launch_common.sh"
launch_benchmark_srun "$HERE/train.py" "$@"
