#!/usr/bin/env bash
# Idempotent set-up of the project's virtual environment.
#
# Creates ./.venv (override with BPNAS_VENV), installs the pinned stack of
# requirements/runtime.txt and requirements/tests.txt, mmcv 2.1.0 *with its
# compiled ops*, and bpnas_mm in editable mode. mmcv 2.1.0 exists only as a
# source distribution; it is built once (about 9 minutes on 2 cores) into a
# wheel kept in BPNAS_WHEEL_DIR (default ~/.cache/bpnas_mm/wheels), so later
# installs on the same machine take seconds. A second run with nothing to do
# returns in a second or two (it compares a stamp of the requirement files).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BPNAS_VENV:-$ROOT/.venv}"
WHEEL_DIR="${BPNAS_WHEEL_DIR:-$HOME/.cache/bpnas_mm/wheels}"
PY="${PYTHON:-python3}"
MMCV_VERSION=2.1.0

stamp_of() {
  cat "$ROOT/requirements/"*.txt "$ROOT/setup.py" "$ROOT/tools/install.sh" | sha256sum | cut -d' ' -f1
}

if [ -f "$VENV/.bpnas_stamp" ] && [ "$(cat "$VENV/.bpnas_stamp")" = "$(stamp_of)" ]; then
  echo "[install] environment up to date: $VENV"
  exit 0
fi

log() { echo "[install] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)

log "installing build tools and torch (taken from this machine's disk where available)"
# setuptools < 81: mmcv 2.1.0's setup.py imports pkg_resources (removed in 82).
"${PIP[@]}" "setuptools>=77,<81" wheel ninja psutil
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1

build_mmcv_wheel() {
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "building mmcv $MMCV_VERSION with CPU ops (one time, ~9 min on 2 cores)"
  "$VPY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$work" "mmcv==$MMCV_VERSION"
  tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
  local src="$work/mmcv-$MMCV_VERSION"
  # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q 'std=c++20' "$src/setup.py" || { echo "could not patch mmcv setup.py" >&2; exit 1; }
  mkdir -p "$WHEEL_DIR"
  (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
      "$VPY" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" .)
  # Move into place only when complete, so an interrupted build leaves nothing half-written.
  mv "$work"/dist/mmcv-"$MMCV_VERSION"-*.whl "$WHEEL_DIR/"
}

if ! "$VPY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    build_mmcv_wheel
  fi
  log "installing mmcv from $WHEEL_DIR"
  "${PIP[@]}" --no-deps "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl
fi

log "installing runtime and test requirements"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
    "mmcv==$MMCV_VERSION" "setuptools>=77,<81"
log "installing bpnas_mm (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

"$VPY" -c "import mmcv.ops, mmdet, mmpretrain, bpnas_mm; print('[install] ok: mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmpretrain', mmpretrain.__version__)"
stamp_of > "$VENV/.bpnas_stamp"
