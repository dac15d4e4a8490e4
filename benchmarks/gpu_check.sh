#!/usr/bin/env bash
# GPU check (DESIGN.md, "Testing"): run where a CUDA GPU is at hand (H100/H200). Everything goes
# into "${OUT:-benchmarks/results}": one log per section, JSON results, figures, and
# gpu_check_status.txt with each section's exit status (printed at the end).
#
#     bash benchmarks/gpu_check.sh                        # every section
#     SECTIONS="dali table" OUT=/tmp/r bash benchmarks/gpu_check.sh   # the same-GPU comparison only
#
# Sections, in this order (DALI first: it is the part never measured), with their time limits (s):
#   dali    DALI wheels installed if carried (below); region-decode probe in a child process
#           (nvImageCodec 0.9.0 crash, NVIDIA/nvImageCodec issue 55) and the loader's img/s with
#           hw_decoder_load 0 / 0.65 / 0.9 / 1.0, beside the CPU loader (130)
#   table   the same-GPU table: loaders {reference (a) deit's fp16 AMP eager step, reference (b)
#           fastdeit's compiled bf16 step, cpu, dali} x {DeiT-Ti, S, B}, per-GPU batch 128, max side
#           512, 16 workers/threads, 50 timed steps after 10, EMA on; one figure, one table (3 x 140)
#   e2e256  DeiT-B and DeiT-S, cpu loader, per-GPU batch 256 (2 x 80)
#   model   step img/s and MFU at batch 128 and 256, compiled and eager, attention backends and
#           CUDA graphs for DeiT-B (200); autotune: DeiT-B compiled with max-autotune (180)
#   augment device augmentation (40); augkernels the fused Triton augmentation, torch vs fused at
#           batch 128/256 (150); distill DeiT-B/S/Ti with RegNetY-16GF (90); pytest -m gpu (90)
# "dali table" fits one 10-minute device call (about 8 minutes); the rest is a second call.
# Where only a few result files can come back (a lent device returns 8), write to a scratch folder
# and ship one archive: OUT=/tmp/r bash benchmarks/gpu_check.sh; tar czf results.tgz -C /tmp/r .
#
# DALI (extra `dali`, ~244 MiB of wheels: nvidia-dali-cuda130, nvidia-nvimgcodec-cu13,
# nvidia-libnvcomp-cu13, nvidia-nvjpeg) travels to a lent device in parts of at most 60 MiB:
# here, `bash benchmarks/dali_wheels.sh pack WHEEL_DIR` writes .dali_wheels/1, /2, ... (git-ignored);
# carry one numbered folder per call to the warm machine (a carried path replaces only itself, so
# earlier parts stay), and the `dali` section joins the parts, checks their SHA-256 and installs
# them into /tmp/dali_site (no network needed). Without them the DALI rows are skipped.
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-benchmarks/results}"
SECTIONS="${SECTIONS:-dali table e2e256 model autotune augment augkernels distill pytest}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's fastdeit, installed or not
export PYTHONUNBUFFERED=1
WORK="${WORK:-/tmp/fastdeit_gpu_check}"
mkdir -p "$WORK"
STATUS="$OUT/gpu_check_status.txt"
touch "$STATUS"
trap 'echo "== gpu_check status"; cat "$STATUS"' EXIT
want() { case " $SECTIONS " in *" $1 "*) return 0;; *) return 1;; esac; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc
  lscpu 2>/dev/null | grep -m1 "Model name"
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
} >> "$OUT/gpu_check_machine.txt"

# --- DALI from carried wheel parts -------------------------------------------------------------
if ! "$PY" -c "import nvidia.dali" 2>/dev/null && [ -d .dali_wheels ]; then
    bash benchmarks/dali_wheels.sh install .dali_wheels /tmp/dali_site 2>&1 | tee -a "$OUT/gpu_dali.log"
    export PYTHONPATH="/tmp/dali_site:$PYTHONPATH"
fi
HAVE_DALI=0
"$PY" -c "import nvidia.dali" 2>/dev/null && HAVE_DALI=1

# --- the benchmark files: JPEG q90 at max side 512, ImageNet-sized sources; e2e's holds 60+ steps
# of batch 256 in one epoch (no pipeline restart while timing) ---------------------------------
E2E_DATA="$WORK/e2e512.beton"
DALI_DATA="$WORK/dali512.beton"
if want dali || want table || want e2e256; then
    timeout 60 "$PY" -m fastdeit.bench.e2e "$E2E_DATA" "$DALI_DATA" 2>&1 | tee -a "$OUT/gpu_check_data.log"
    echo "bench_files rc=${PIPESTATUS[0]}" >> "$STATUS"
fi

# --- DALI loader: probe, then hw_decoder_load swept; writes $OUT/gpu_dali_cuda.json -------------
if want dali; then
    echo "== DALI loader benchmark"
    if [ "$HAVE_DALI" = 1 ]; then
        timeout 130 "$PY" benchmarks/gpu_dali.py --device cuda --data "$DALI_DATA" --batch 128 --threads 16 \
            --rounds 2 --hw-load 0 0.65 0.9 1.0 --json "$OUT/gpu_dali_cuda.json" 2>&1 | tee -a "$OUT/gpu_dali.log"
        echo "gpu_dali rc=${PIPESTATUS[0]}" >> "$STATUS"
    else
        echo "gpu_dali skipped: nvidia.dali not installed (pip install 'fastdeit[dali]', or carry .dali_wheels)" \
            | tee -a "$STATUS"
    fi
fi

# --- the same-GPU table: one process per model (its compiled step shared by the rows) ----------
if want table; then
    echo "== same-GPU e2e table"
    LOADERS="cpu,reference"
    if [ "$HAVE_DALI" = 1 ]; then LOADERS="dali,cpu,reference"; fi
    for preset in deit_b_300ep deit_s_300ep deit_ti_300ep; do
        timeout 140 "$PY" -m fastdeit bench e2e --preset "$preset" --loader "$LOADERS" --batch 128 --device cuda \
            --data "$E2E_DATA" --json "$OUT/e2e_${preset}.json" 2>&1 | tee -a "$OUT/gpu_e2e.log"
        echo "e2e_${preset} rc=${PIPESTATUS[0]}" >> "$STATUS"
    done
    timeout 30 "$PY" benchmarks/plot_e2e.py "$OUT"/e2e_deit_*.json --same-gpu "$OUT/same_gpu.png" \
        --table "$OUT/same_gpu.md" --out "$OUT/gpu_e2e.png" 2>&1 | tee -a "$OUT/gpu_e2e.log"
fi

# --- per-GPU batch 256 (issue 12), the CPU loader --------------------------------------------
if want e2e256; then
    for preset in deit_b_300ep deit_s_300ep; do
        timeout 80 "$PY" -m fastdeit bench e2e --preset "$preset" --loader cpu --batch 256 --device cuda \
            --data "$E2E_DATA" --json "$OUT/e2e256_${preset}.json" 2>&1 | tee -a "$OUT/gpu_e2e.log"
        echo "e2e256_${preset} rc=${PIPESTATUS[0]}" >> "$STATUS"
    done
fi

# --- model step: img/s and MFU of DeiT-Ti/S/B at batch 128 and 256 -------------------------------
if want model; then
    echo "== model benchmark"
    timeout 200 "$PY" -m fastdeit bench model --device cuda --json "$OUT/gpu_model.json" 2>&1 | tee "$OUT/gpu_model.log"
    echo "gpu_model rc=${PIPESTATUS[0]}" >> "$STATUS"
fi
if want autotune; then
    timeout 180 "$PY" -m fastdeit bench model --max-autotune --device cuda --json "$OUT/gpu_model_autotune.json" \
        2>&1 | tee "$OUT/gpu_model_autotune.log"
    echo "gpu_model_autotune rc=${PIPESTATUS[0]}" >> "$STATUS"
fi

# --- device augmentation (issue 5): DeviceAugment img/s on the GPU (RandAugment, erase, mix,
# bf16 channels_last) beside timm's per-image PIL pipeline on one CPU core; writes
# $OUT/augment_cuda.json (machine and GPU named inside) ------------------------------------------
if want augment; then
    echo "== device augmentation benchmark"
    timeout 40 "$PY" benchmarks/bench_augment.py --device cuda --images 1024 --batch 256 --threads 1 \
        --seconds 5 --json "$OUT/augment_cuda.json" 2>&1 | tee "$OUT/augment_cuda.log"
    echo "augment_cuda rc=${PIPESTATUS[0]}" >> "$STATUS"
fi

# --- fused augmentation kernels (issue 13): the per-op torch path against the fused Triton
# kernels at batch 128 and 256, img/s and main-thread CPU ms per batch, timm's per-image PIL
# pipeline per core beside them (targets: >= 100,000 img/s at batch 128, <= 1 ms CPU per batch);
# writes $OUT/gpu_augment_kernels.json. The first call compiles the kernels (tens of seconds) ----
if want augkernels; then
    echo "== fused augmentation kernels benchmark"
    timeout 150 "$PY" -m fastdeit bench augment --device cuda --json "$OUT/gpu_augment_kernels.json" \
        2>&1 | tee "$OUT/gpu_augment_kernels.log"
    echo "gpu_augment_kernels rc=${PIPESTATUS[0]}" >> "$STATUS"
fi

# --- distillation (issue 7): DeiT-B/S/Ti distilled: none, online RegNetY-16GF, teacher-logit cache
if want distill; then
    echo "== distillation benchmark"
    timeout 90 "$PY" -m fastdeit bench distill --device cuda --json "$OUT/gpu_distill.json" 2>&1 | tee "$OUT/gpu_distill.log"
    echo "gpu_distill rc=${PIPESTATUS[0]}" >> "$STATUS"
fi

# --- tests marked gpu (all issues) -----------------------------------------------------------
if want pytest; then
    echo "== pytest -m gpu"
    timeout 90 "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUT/pytest_gpu.xml" tests \
        2>&1 | tee "$OUT/pytest_gpu.log" | tail -n 15
    echo "pytest_gpu rc=${PIPESTATUS[0]}" >> "$STATUS"
fi
