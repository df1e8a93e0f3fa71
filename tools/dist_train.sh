#!/usr/bin/env bash
# Distributed training/search with torchrun: tools/dist_train.sh CONFIG NPROC [ARGS...]
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
torchrun --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
