#!/usr/bin/env bash
# DALI's wheels (~244 MiB: nvidia-dali-cuda130, nvidia-nvimgcodec-cu13, nvidia-libnvcomp-cu13,
# nvidia-nvjpeg; versions pinned in pyproject.toml's `dali` extra; plus, where absent there, DALI's
# pure-Python needs astunparse, gast, libcst, makefun, nvtx, optree) carried to a machine with no
# network in parts of at most 60 MiB, one numbered folder per transfer.
#
#   bash benchmarks/dali_wheels.sh pack WHEEL_DIR [OUT_DIR=.dali_wheels]
#       splits every WHEEL_DIR/*.whl into 60 MiB parts, packs the parts into OUT_DIR/1, OUT_DIR/2, ...
#       (each at most 60 MiB) and writes OUT_DIR/1/SHA256SUMS of the whole wheels.
#       (WHEEL_DIR: e.g. `pip download --no-deps --only-binary=:all: --python-version 3.12
#       --platform manylinux_2_28_x86_64 -d WHEEL_DIR nvidia-dali-cuda130==2.4.0 ...`)
#   bash benchmarks/dali_wheels.sh install PARTS_DIR TARGET
#       joins the parts found under PARTS_DIR/*/, checks them against SHA256SUMS and installs the
#       wheels into TARGET with pip (--no-index --no-deps); add TARGET to PYTHONPATH.
set -euo pipefail
LIMIT=$((${PART_MIB:-60} * 1024 * 1024))  # PART_MIB: smaller parts (tests)
cmd="${1:-}"
case "$cmd" in
pack)
    src="$2"; out="${3:-.dali_wheels}"
    mkdir -p "$out"
    tmp="$(mktemp -d)"
    (cd "$src" && sha256sum *.whl) > "$tmp/SHA256SUMS"
    for whl in "$src"/*.whl; do
        split -b "$LIMIT" -d -a 2 "$whl" "$tmp/$(basename "$whl").part-"
    done
    n=1; used=0
    mkdir -p "$out/$n"; mv "$tmp/SHA256SUMS" "$out/$n/"
    for part in $(ls "$tmp" | sort); do
        size=$(stat -c %s "$tmp/$part")
        if [ $((used + size)) -gt "$LIMIT" ] && [ "$used" -gt 0 ]; then n=$((n + 1)); used=0; mkdir -p "$out/$n"; fi
        mv "$tmp/$part" "$out/$n/"; used=$((used + size))
    done
    rmdir "$tmp"
    echo "packed into $n folder(s) under $out: carry $out/1 ... $out/$n, one per transfer"
    ;;
install)
    parts="$2"; target="$3"
    work="$(mktemp -d)"
    sums="$(ls "$parts"/*/SHA256SUMS | head -n 1)"
    for whl in $(awk '{print $2}' "$sums"); do
        # the parts of this wheel in order, wherever each was carried
        ls "$parts"/*/"$whl".part-* >/dev/null 2>&1 || { echo "dali_wheels: no parts of $whl under $parts" >&2; exit 1; }
        cat $(ls "$parts"/*/"$whl".part-* | awk -F'.part-' '{print $NF" "$0}' | sort -n | cut -d' ' -f2) > "$work/$whl"
    done
    (cd "$work" && sha256sum -c --quiet "$sums") || { echo "dali_wheels: a wheel is incomplete (missing part?)" >&2; exit 1; }
    "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$target" "$work"/*.whl
    rm -rf "$work"
    echo "dali_wheels: installed $(awk '{print $2}' "$sums" | tr '\n' ' ')into $target"
    ;;
*)
    echo "usage: $0 pack WHEEL_DIR [OUT_DIR] | install PARTS_DIR TARGET" >&2; exit 2 ;;
esac
