# shellcheck shell=bash
# Shared by the launch scripts (sourced, not run):
#   tools/dist_train.sh, tools/slurm_train.sh,
#   tools/benchmarks/{mmdetection,mmsegmentation}/{dist_train.sh,slurm_train.sh}
#
# launch_need_args MIN USAGE "$@"
#     fewer than MIN arguments: "usage: bash $0 USAGE" on stderr, exit 2.
# launch_torchrun PATH_FIRST NPROC SCRIPT [SCRIPT ARGS...]
#     exec torchrun with NPROC processes per node running SCRIPT. Environment:
#     NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT or MASTER_PORT
#     (a free port on one node, else 29500: every node must use the same
#     port), PYTHON.
# launch_srun PATH_FIRST PARTITION JOB_NAME SCRIPT [SCRIPT ARGS...]
#     srun SCRIPT on Slurm. Environment: GPUS (8, tasks in all),
#     GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments,
#     split into words), PYTHON.
# launch_benchmark_torchrun TRAIN_PY CONFIG PRETRAIN GPUS [ARGS...]
# launch_benchmark_srun TRAIN_PY PARTITION JOB_NAME CONFIG PRETRAIN [ARGS...]
#     the command lines of tools/benchmarks/<lib>/{dist,slurm}_train.sh:
#     TRAIN_PY CONFIG --pretrained PRETRAIN --launcher ... ARGS.
#
# PATH_FIRST: a folder put first on the PYTHONPATH of the training
# processes ('' for none; tools/*.sh pass "$LAUNCH_ROOT", the checkout).
# PYTHON defaults to the python (else python3) on PATH.

# The checkout root (the folder above tools/).
LAUNCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

launch_need_args() {
  local min=$1 usage=$2
  shift 2
  if [ $# -lt "$min" ]; then
    echo "usage: bash $0 $usage" >&2
    exit 2
  fi
}

launch_torchrun() {
  local path_first=$1 nproc=$2 script=$3
  shift 3
  local nnodes=${NNODES:-1}
  local node_rank=${NODE_RANK:-0}
  local master_addr=${MASTER_ADDR:-127.0.0.1}
  local python
  python=${PYTHON:-$(command -v python || command -v python3)}
  local port=${PORT:-${MASTER_PORT:-}}
  if [ -z "$port" ]; then
    if [ "$nnodes" = 1 ]; then
      port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
    else
      port=29500  # every node must use the same port
    fi
  fi
  if [ -n "$path_first" ]; then
    local -x PYTHONPATH="$path_first${PYTHONPATH:+:$PYTHONPATH}"
  fi
  exec "$python" -m torch.distributed.run \
      --nnodes="$nnodes" \
      --node_rank="$node_rank" \
      --master_addr="$master_addr" \
      --master_port="$port" \
      --nproc_per_node="$nproc" \
      "$script" "$@"
}

launch_srun() {
  local path_first=$1 partition=$2 job_name=$3 script=$4
  shift 4
  local gpus=${GPUS:-8}
  local gpus_per_node=${GPUS_PER_NODE:-8}
  local cpus_per_task=${CPUS_PER_TASK:-5}
  local srun_args=${SRUN_ARGS:-""}
  local python
  python=${PYTHON:-$(command -v python || command -v python3)}
  if [ -n "$path_first" ]; then
    local -x PYTHONPATH="$path_first${PYTHONPATH:+:$PYTHONPATH}"
  fi
  # SRUN_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  srun -p "$partition" \
      --job-name="$job_name" \
      --gres=gpu:"$gpus_per_node" \
      --ntasks="$gpus" \
      --ntasks-per-node="$gpus_per_node" \
      --cpus-per-task="$cpus_per_task" \
      --kill-on-bad-exit=1 \
      ${srun_args} \
      "$python" -u "$script" "$@"
}

launch_benchmark_torchrun() {
  local train_py=$1
  shift
  launch_need_args 3 'CONFIG PRETRAIN GPUS [train.py args...]' "$@"
  launch_torchrun '' "$3" "$train_py" "$1" --pretrained "$2" \
      --launcher pytorch "${@:4}"
}

launch_benchmark_srun() {
  local train_py=$1
  shift
  launch_need_args 4 'PARTITION JOB_NAME CONFIG PRETRAIN [train.py args...]' "$@"
  launch_srun '' "$1" "$2" "$train_py" "$3" --pretrained "$4" \
      --launcher=slurm "${@:5}"
}
