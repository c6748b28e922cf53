#!/usr/bin/env bash
# Build mmmask's environment from nothing (Python 3.11 + gcc), or reuse the cached one.
#
#   bash tools/install.sh            # builds/reuses the env, installs mmmask, links ./.venv
#
# The environment lives outside the checkout, keyed by the pinned versions:
#   ${MMMASK_CACHE:-~/.cache/mmmask}/venv-<key>      the virtual environment
#   ${MMMASK_CACHE:-~/.cache/mmmask}/wheels/<key>/   the mmcv wheel built with ops
# A change of torch or mmcv version changes the key, so a new env (and wheel) is built.
# ./.venv in the checkout is a symlink to the cached env.
set -euo pipefail

PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
PY_TAG=$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}.{sys.version_info[1]}")')
KEY="${PY_TAG}-torch${TORCH_VERSION}-mmcv${MMCV_VERSION}"
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
VENV="$CACHE/venv-$KEY"
WHEELS="$CACHE/wheels/$KEY"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Bump ENV_REVISION when the steps below change what goes into the env.
ENV_REVISION=1
# Fingerprint of everything that decides the env's content besides the key.
REQ_HASH=$( (echo "$ENV_REVISION"; cat "$ROOT"/requirements/*.txt) | sha256sum | cut -c1-16)

STEP=""
fail() { echo "install.sh: FAILED at step '$STEP' (exit $1). See the output above." >&2; exit "$1"; }
trap 'fail $?' ERR
step() { STEP="$1"; echo "==> [$(date +%H:%M:%S)] $1"; }

mkdir -p "$CACHE" "$WHEELS"
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

  MMCV_WHEEL=$(ls "$WHEELS"/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$MMCV_WHEEL" ]; then
    step "build mmcv==$MMCV_VERSION with ops against torch $TORCH_VERSION (about 10 min on 2 cores)"
    BUILD=$(mktemp -d)
    $PIP download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-${MMCV_VERSION}.tar.gz -C "$BUILD"
    # ATen in torch>=2.10 needs C++20; mmcv 2.1.0 passes -std=c++17.
    grep -q "'-std=c++17'" "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    sed -i "s/'-std=c++17'/'-std=c++20'/g" "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    (cd "$BUILD/mmcv-$MMCV_VERSION" && \
      MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} FORCE_CUDA=0 CUDA_HOME= \
      $PIP wheel -q --no-deps --no-build-isolation --no-cache-dir . -w "$BUILD/out")
    mv "$BUILD"/out/mmcv-*.whl "$WHEELS/"
    rm -rf "$BUILD"
    MMCV_WHEEL=$(ls "$WHEELS"/mmcv-${MMCV_VERSION}-*.whl | head -n1)
  else
    step "reuse cached mmcv wheel $MMCV_WHEEL"
  fi
  step "install mmcv wheel"
  $PIP install -q --no-deps "$MMCV_WHEEL"

  step "install OpenMMLab stack and the rest of requirements/"
  $PIP install -q "mmcv==$MMCV_VERSION" "mmengine==0.10.7" "mmpretrain==1.2.0" "mmdet==3.3.0" \
    "mmsegmentation==1.2.2" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

  step "check imports (mmcv.ops, mmpretrain, mmdet, mmseg)"
  "$VENV/bin/python" - <<'PY'
import torch, torchvision, mmcv, mmengine, mmpretrain, mmdet, mmseg
import mmcv.ops, mmpretrain.models, mmdet.models, mmseg.models  # noqa: F401
from mmcv.ops import nms
b = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.]]); s = torch.tensor([0.9, 0.8])
nms(b, s, 0.5)
print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__,
      'mmpretrain', mmpretrain.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)
PY
  echo "$REQ_HASH" > "$VENV/.mmmask-ready"
fi

step "install mmmask (editable) from $ROOT"
$PIP install -q --no-deps --no-build-isolation -e "$ROOT"
ln -sfn "$VENV" "$ROOT/.venv"
step "done: environment at $ROOT/.venv -> $VENV"
