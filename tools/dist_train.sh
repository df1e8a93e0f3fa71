#!/usr/bin/env bash
# Distributed training/search with torchrun: tools/dist_train.sh CONFIG NPROC [ARGS...]
# Runs torch.distributed.run with $PYTHON (default: the project's .venv, else python).
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "$PYTHON" ]; then
    if [ -x "$HERE/../.venv/bin/python" ]; then PYTHON="$HERE/../.venv/bin/python"; else PYTHON=python; fi
fi
"$PYTHON" -m torch.distributed.run --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$HERE/train.py" "$CONFIG" --launcher pytorch "${@:3}"
