#!/usr/bin/env bash
# Real datasets for CI (tests/test_realdata.py, docs/data.md "Fashion-MNIST from Debian"):
# Debian's package dataset-fashion-mnist puts the real Fashion-MNIST idx files in
# /usr/share/datasets/fashion-mnist/. Idempotent: nothing to do when they are there.
# Needs root (or passwordless sudo) and Debian/Ubuntu apt.
set -euo pipefail

DIR=/usr/share/datasets/fashion-mnist
FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
say() { echo "datasets-setup: $*"; }

have() { for f in $FILES; do [ -s "$DIR/$f" ] || return 1; done; }
if have; then
    say "Fashion-MNIST already in $DIR"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "datasets-setup: needs root or sudo" >&2; exit 1; }
    SUDO="sudo -n"
fi
say "installing dataset-fashion-mnist (apt)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
have || { echo "datasets-setup: dataset-fashion-mnist installed but $DIR lacks some of: $FILES" >&2; exit 1; }
say "Fashion-MNIST in $DIR"
