#!/usr/bin/env bash
# Install everything the test suite needs into .venv (system libraries for the FFCV interop tests;
# libjpeg-dev + gcc to build the fastdeit.kernels._jpeg_region extension; the package with all
# extras) and run it. Used by CI (.ci/run) exactly as README shows.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null && ! dpkg -s libturbojpeg0-dev libopencv-dev libjpeg-dev gcc >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libturbojpeg0-dev libopencv-dev libjpeg-dev gcc pkg-config >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch 2.14.1 + torchvision 0.29.1: the pair pip takes from this machine's disk (see DESIGN.md)
.venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[dev,dali,ffcv]"
# The FFCV and DALI tests fail (instead of skipping) if their extras do not import (tests/extras.py)
export FASTDEIT_REQUIRE_EXTRAS=1
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
