#!/usr/bin/env bash
# Build mmmask's environment from nothing (Python 3.11 + gcc), or reuse the cached one.
#
#   bash tools/install.sh              # builds/reuses the env, installs mmmask, links ./.venv
#   bash tools/install.sh --wheel-only # builds/reuses only the mmcv wheel and prints its path
#   bash tools/install.sh --print-key  # prints the cache key of this machine's flavour
#
# The environment lives outside the checkout, keyed by the pinned versions and the mmcv flavour:
#   ${MMMASK_CACHE:-~/.cache/mmmask}/venv-<key>      the virtual environment
#   ${MMMASK_CACHE:-~/.cache/mmmask}/wheels/<key>/   the mmcv wheel built with ops
# A change of torch or mmcv version changes the key, so a new env (and wheel) is built.
# ./.venv in the checkout is a symlink to the cached env.
#
# mmcv flavour. CPU ops (key py3.11-torch2.14.1-mmcv2.1.0) unless the machine has an NVIDIA
# GPU (`nvidia-smi -L` works) or MMMASK_CUDA_OPS=1; MMMASK_CUDA_OPS=0 forces the CPU flavour.
# The CUDA flavour (key <cpu key>-cu130-arch<list>) builds mmcv with FORCE_CUDA=1 against:
#   CUDA_HOME     $CUDA_HOME if it holds bin/nvcc of torch's CUDA major version, else a system
#                 toolkit of that major version (/usr/local/cuda-13*, /usr/local/cuda, nvcc on
#                 PATH), else one assembled in $CACHE/cuda-13.0/ from the pip wheels
#                 nvidia-cuda-nvcc, -crt, nvidia-nvvm, nvidia-cuda-cccl ==13.0.* plus the
#                 headers and libraries of torch's own nvidia wheels (MMMASK_CUDA_TOOLKIT=pip
#                 skips the system search; =system requires it).
#   TORCH_CUDA_ARCH_LIST  as set, else the compute capabilities of the visible GPUs, else
#                 DEFAULT_CUDA_ARCHS below. CUDA 13 compiles sm_75 and newer only (nvcc
#                 --list-gpu-arch starts at compute_75): V100 (sm_70) needs a CUDA 12 torch.
#   --wheel-only  needs an existing Python with torch==$TORCH_VERSION, setuptools<81, wheel and
#                 ninja: BUILD_PYTHON, else the cached env's python. It installs nothing there.
set -eEuo pipefail

PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
# The CUDA version of the torch==$TORCH_VERSION wheels on the package index.
TORCH_CUDA_VERSION=13.0
MMCV_VERSION=2.1.0
# T4 / A10G-3090 / A100 / H100-H200 / B200 SASS, and PTX of the newest for later GPUs.
DEFAULT_CUDA_ARCHS="7.5;8.0;8.6;9.0;10.0+PTX"
WHEEL_ONLY=0
PRINT_KEY=0
for arg in "$@"; do
  case "$arg" in
    --wheel-only) WHEEL_ONLY=1 ;;
    --print-key) PRINT_KEY=1 ;;
    *) echo "install.sh: unknown argument '$arg' (known: --wheel-only, --print-key)" >&2; exit 2 ;;
  esac
done
PY_TAG=$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}.{sys.version_info[1]}")')
KEY="${PY_TAG}-torch${TORCH_VERSION}-mmcv${MMCV_VERSION}"
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

CUDA_OPS=0
case "${MMMASK_CUDA_OPS:-}" in
  1) CUDA_OPS=1 ;;
  0) CUDA_OPS=0 ;;
  "") if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then CUDA_OPS=1; fi ;;
  *) echo "install.sh: MMMASK_CUDA_OPS must be 0 or 1, got '$MMMASK_CUDA_OPS'" >&2; exit 2 ;;
esac
if [ "$CUDA_OPS" = 1 ]; then
  if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      TORCH_CUDA_ARCH_LIST=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader \
        | tr -d ' ' | sort -u -t. -k1,1n -k2,2n | paste -sd';')
    fi
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$DEFAULT_CUDA_ARCHS}
  fi
  export TORCH_CUDA_ARCH_LIST
  KEY="${KEY}-cu${TORCH_CUDA_VERSION/./}-arch$(echo "$TORCH_CUDA_ARCH_LIST" | tr ' ;' '__')"
fi
if [ "$PRINT_KEY" = 1 ]; then echo "$KEY"; exit 0; fi
VENV="$CACHE/venv-$KEY"
WHEELS="$CACHE/wheels/$KEY"
# Bump ENV_REVISION when the steps below change what goes into the env.
ENV_REVISION=1
# Fingerprint of everything that decides the env's content besides the key.
REQ_HASH=$( (echo "$ENV_REVISION"; cat "$ROOT"/requirements/*.txt) | sha256sum | cut -c1-16)

STEP=""
# (-E: the trap also fires inside functions; a subshell only passes its status up)
fail() { [ "$BASH_SUBSHELL" -gt 0 ] && exit "$1"; echo "install.sh: FAILED at step '$STEP' (exit $1). See the output above." >&2; exit "$1"; }
trap 'fail $?' ERR
step() { STEP="$1"; echo "==> [$(date +%H:%M:%S)] $1"; }

# nvcc_major DIR: the CUDA major version of DIR/bin/nvcc, empty if it has none.
nvcc_major() {
  [ -x "$1/bin/nvcc" ] || return 0
  "$1/bin/nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -n1
}

# find_system_cuda: print a system toolkit of torch's CUDA major version, or nothing.
find_system_cuda() {
  local major=${TORCH_CUDA_VERSION%%.*} d
  local candidates=("${CUDA_HOME:-}" "/usr/local/cuda-$TORCH_CUDA_VERSION")
  for d in /usr/local/cuda-"$major".* /usr/local/cuda; do candidates+=("$d"); done
  if command -v nvcc >/dev/null 2>&1; then
    d=$(readlink -f "$(command -v nvcc)"); candidates+=("${d%/bin/nvcc}")
    # a wrapper script (`exec /path/bin/nvcc "$@"`) names the real one
    d=$(sed -n 's|^exec \(/[^ ]*\)/bin/nvcc .*|\1|p' "$(command -v nvcc)" 2>/dev/null | head -n1 || true)
    [ -n "$d" ] && candidates+=("$d")
  fi
  for d in "${candidates[@]}"; do
    if [ -n "$d" ] && [ -f "$d/include/cuda_runtime.h" ] && [ "$(nvcc_major "$d")" = "$major" ]; then
      echo "$d"; return 0
    fi
  done
}

# torch_cuda_dir BUILD_PY: the nvidia/cu<major> folder of torch's CUDA wheels (include/, lib/).
torch_cuda_dir() {
  "$1" -c "import os, torch; print(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia', 'cu${TORCH_CUDA_VERSION%%.*}'))"
}

# assemble_pip_cuda BUILD_PY: a CUDA_HOME made of the pip nvcc of torch's CUDA version and the
# headers/libraries torch's nvidia wheels installed next to BUILD_PY's torch; sets CUDA_HOME_PIP.
# Layout nvcc.profile expects: bin/{nvcc,ptxas,cudafe++,fatbinary,nvlink,crt/}, nvvm/{bin/cicc,
# libdevice}, include/{crt,cccl,...}, lib/, lib64 -> lib, targets/x86_64-linux/{include,lib}.
assemble_pip_cuda() {
  local py=$1 major=${TORCH_CUDA_VERSION%%.*}
  local dest="$CACHE/cuda-$TORCH_CUDA_VERSION" home e
  home="$dest/site/nvidia/cu$major"
  if [ ! -f "$dest/.ready" ]; then
    rm -rf "$dest"
    "$py" -m pip --disable-pip-version-check install -q --no-deps --target "$dest/site" \
      "nvidia-cuda-nvcc==$TORCH_CUDA_VERSION.*" "nvidia-cuda-crt==$TORCH_CUDA_VERSION.*" \
      "nvidia-nvvm==$TORCH_CUDA_VERSION.*" "nvidia-cuda-cccl==$TORCH_CUDA_VERSION.*"
    touch "$dest/.ready"
  fi
  local torch_nv n
  torch_nv=$(torch_cuda_dir "$py")
  if [ ! -d "$torch_nv/include" ] || [ ! -d "$torch_nv/lib" ]; then
    echo "install.sh: torch's CUDA wheels are missing ($torch_nv/include, $torch_nv/lib)" >&2
    return 1
  fi
  mkdir -p "$home/lib" "$home/targets/x86_64-linux"
  # torch's entries as links (the toolkit wheels' own files stay; links are renewed)
  for e in "$torch_nv"/include/* "$torch_nv"/lib/*; do
    n="$home/${e#"$torch_nv"/}"
    if [ ! -e "$n" ] || [ -L "$n" ]; then ln -sfn "$e" "$n"; fi
  done
  ln -sfn "libcudart.so.$major" "$home/lib/libcudart.so"
  ln -sfn lib "$home/lib64"
  ln -sfn ../../include "$home/targets/x86_64-linux/include"
  ln -sfn ../../lib "$home/targets/x86_64-linux/lib"
  if [ "$(nvcc_major "$home")" != "$major" ]; then
    echo "install.sh: the assembled toolkit $home has no working nvcc $major" >&2; return 1
  fi
  CUDA_HOME_PIP=$home
}

# check_cuda_ext SITE: the built extension links the CUDA runtime and has CUDA kernels.
check_cuda_ext() {
  local so
  so=$(ls "$1"/mmcv/_ext*.so | head -n1)
  readelf -d "$so" | grep -c 'NEEDED.*libcudart' >/dev/null \
    || { echo "install.sh: $so does not link libcudart: mmcv was built without CUDA" >&2; return 1; }
  nm -D --defined-only "$so" | c++filt | grep -ciE 'roi_?align_?forward_?cuda' >/dev/null \
    || { echo "install.sh: $so has no CUDA RoIAlign: mmcv was built without CUDA" >&2; return 1; }
}

# build_mmcv_wheel BUILD_PY: build (or reuse) the mmcv wheel of this flavour; sets MMCV_WHEEL.
build_mmcv_wheel() {
  local py=$1 build cuda_home
  MMCV_WHEEL=$(ls "$WHEELS"/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n1 || true)
  if [ -n "$MMCV_WHEEL" ]; then
    step "reuse cached mmcv wheel $MMCV_WHEEL"; return 0
  fi
  local cuda_env=(FORCE_CUDA=0 CUDA_HOME=)
  if [ "$CUDA_OPS" = 1 ]; then
    step "find a CUDA $TORCH_CUDA_VERSION toolkit for mmcv's CUDA ops"
    local have
    have=$("$py" -c 'import torch; print(torch.version.cuda or "")')
    if [ "$have" != "$TORCH_CUDA_VERSION" ]; then
      echo "install.sh: torch in $py is built for CUDA '${have:-none}', expected $TORCH_CUDA_VERSION" >&2
      return 1
    fi
    cuda_home=""
    case "${MMMASK_CUDA_TOOLKIT:-auto}" in
      auto) cuda_home=$(find_system_cuda) ;;
      system) cuda_home=$(find_system_cuda)
        [ -n "$cuda_home" ] || { echo "install.sh: no system CUDA ${TORCH_CUDA_VERSION%%.*} toolkit found" >&2; return 1; } ;;
      pip) ;;
      *) echo "install.sh: MMMASK_CUDA_TOOLKIT must be auto, system or pip" >&2; return 1 ;;
    esac
    if [ -z "$cuda_home" ]; then
      step "assemble CUDA $TORCH_CUDA_VERSION from pip's nvcc and torch's CUDA wheels"
      assemble_pip_cuda "$py"; cuda_home=$CUDA_HOME_PIP
    fi
    echo "    CUDA_HOME=$cuda_home TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
    cuda_env=(FORCE_CUDA=1 "CUDA_HOME=$cuda_home" "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST")
    # the headers of torch's own CUDA libraries (cuBLAS, cuSPARSE, ...: ATen includes them;
    # a toolkit without them still builds) and, if the toolkit has none, a libcudart.so
    local torch_nv
    torch_nv=$(torch_cuda_dir "$py")
    cuda_env+=("CPATH=$torch_nv/include${CPATH:+:$CPATH}")
    if [ ! -e "$cuda_home/lib64/libcudart.so" ]; then
      mkdir -p "$CACHE/cuda-link"
      ln -sfn "$torch_nv/lib/libcudart.so.${TORCH_CUDA_VERSION%%.*}" "$CACHE/cuda-link/libcudart.so"
      cuda_env+=("LIBRARY_PATH=$CACHE/cuda-link${LIBRARY_PATH:+:$LIBRARY_PATH}")
    fi
    step "build mmcv==$MMCV_VERSION with CPU and CUDA ops against torch $TORCH_VERSION (see the README for the time)"
  else
    step "build mmcv==$MMCV_VERSION with ops against torch $TORCH_VERSION (about 10 min on 2 cores)"
  fi
  build=$(mktemp -d)
  "$py" -m pip --disable-pip-version-check download -q --no-deps --no-binary :all: \
    --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build"
  tar -xzf "$build"/mmcv-${MMCV_VERSION}.tar.gz -C "$build"
  # ATen in torch>=2.10 needs C++20; mmcv 2.1.0 passes -std=c++17.
  grep -q "'-std=c++17'" "$build/mmcv-$MMCV_VERSION/setup.py"
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$build/mmcv-$MMCV_VERSION/setup.py"
  (cd "$build/mmcv-$MMCV_VERSION" && \
    env MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "${cuda_env[@]}" \
    "$py" -m pip --disable-pip-version-check wheel -q --no-deps --no-build-isolation \
      --no-cache-dir . -w "$build/out")
  if [ "$CUDA_OPS" = 1 ]; then
    step "check the wheel's extension links libcudart and has CUDA kernels"
    rm -rf "$build/check" && mkdir "$build/check"
    (cd "$build/check" && "$py" -m zipfile -e "$build"/out/mmcv-*.whl .)
    check_cuda_ext "$build/check"
  fi
  mkdir -p "$WHEELS"
  mv "$build"/out/mmcv-*.whl "$WHEELS/"
  rm -rf "$build"
  MMCV_WHEEL=$(ls "$WHEELS"/mmcv-${MMCV_VERSION}-*.whl | head -n1)
}

mkdir -p "$CACHE"

if [ "$WHEEL_ONLY" = 1 ]; then
  BUILD_PY=${BUILD_PYTHON:-$VENV/bin/python}
  STEP="check the build python $BUILD_PY"
  "$BUILD_PY" -c "import torch, setuptools, wheel, ninja; assert torch.__version__.split('+')[0] == '$TORCH_VERSION', torch.__version__" \
    || { echo "install.sh: --wheel-only needs a python with torch==$TORCH_VERSION, setuptools, wheel and ninja (set BUILD_PYTHON)" >&2; exit 1; }
  build_mmcv_wheel "$BUILD_PY"
  step "done: mmcv wheel $MMCV_WHEEL"
  exit 0
fi

mkdir -p "$WHEELS"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

if [ -f "$VENV/.mmmask-ready" ] && [ "$(cat "$VENV/.mmmask-ready")" = "$REQ_HASH" ]; then
  step "reuse cached environment $VENV"
else
  step "create virtual environment $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  $PIP install -q --upgrade "pip<26.2"

  step "install torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  $PIP install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

  # torch pulls setuptools>=77; setuptools>=81 drops pkg_resources, which mmcv's
  # setup.py and mmengine import.
  step "install build tools (setuptools>=77,<81, wheel, ninja)"
  $PIP install -q "setuptools>=77,<81" wheel ninja "numpy<2"

  build_mmcv_wheel "$VENV/bin/python"
  step "install mmcv wheel"
  $PIP install -q --no-deps "$MMCV_WHEEL"
  step "install OpenMMLab stack and the rest of requirements/"
  $PIP install -q "mmcv==$MMCV_VERSION" "mmengine==0.10.7" "mmpretrain==1.2.0" "mmdet==3.3.0" \
    "mmsegmentation==1.2.2" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

  step "check imports (mmcv.ops, mmpretrain, mmdet, mmseg)"
  MMMASK_CUDA_FLAVOUR=$CUDA_OPS "$VENV/bin/python" - <<'PY'
import torch, torchvision, mmcv, mmengine, mmpretrain, mmdet, mmseg
import mmcv.ops, mmpretrain.models, mmdet.models, mmseg.models  # noqa: F401
from mmcv.ops import nms
b = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.]]); s = torch.tensor([0.9, 0.8])
nms(b, s, 0.5)
import os
if os.environ['MMMASK_CUDA_FLAVOUR'] == '1' and torch.cuda.is_available():
    nms(b.cuda(), s.cuda(), 0.5)  # the CUDA flavour on a GPU host: its kernels run
print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__,
      'mmpretrain', mmpretrain.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)
PY
  echo "$REQ_HASH" > "$VENV/.mmmask-ready"
fi

step "install mmmask (editable) from $ROOT"
$PIP install -q --no-deps --no-build-isolation -e "$ROOT"
ln -sfn "$VENV" "$ROOT/.venv"
step "done: environment at $ROOT/.venv -> $VENV"
