#!/usr/bin/env bash
# GPU check (DESIGN.md, "Testing"): run where a CUDA GPU is at hand (H100/H200), in under 10
# minutes in all. Everything goes into "${OUT:-benchmarks/results}": one log per section, JSON
# results, and gpu_check_status.txt with each section's exit status (printed at the end).
#
#     bash benchmarks/gpu_check.sh            # or: OUT=/some/dir bash benchmarks/gpu_check.sh
#
# Where only a few result files can come back (a lent device), write to a scratch folder and ship
# one archive: OUT=/tmp/r bash benchmarks/gpu_check.sh; tar czf results.tgz -C /tmp/r .
# (how benchmarks/results/gpu_h200/ was made; see its SUMMARY.md).
#
# Sections are self-contained: each runs under its own `timeout`, writes only its own files and
# records its status; a failing section does not stop the others. Time budget (seconds):
#   pytest -m gpu 90 | DALI loader 120 | device augmentation 40 | fused augmentation kernels 150
#   | model 170 (compile + CUDA graphs)
#   | e2e 80 each: DeiT-B and DeiT-S with the CPU loader, DeiT-B with DALI (compiled, as training
#   runs on CUDA) | distill 90 (DeiT-B/S/Ti)
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's fastdeit, installed or not
STATUS="$OUT/gpu_check_status.txt"
: > "$STATUS"
trap 'echo "== gpu_check status"; cat "$STATUS"' EXIT
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc; } > "$OUT/gpu_check_machine.txt"

# --- tests marked gpu (all issues) -----------------------------------------------------------
echo "== pytest -m gpu"
timeout 90 "$PY" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUT/pytest_gpu.xml" tests \
    2>&1 | tee "$OUT/pytest_gpu.log" | tail -n 15
echo "pytest_gpu rc=${PIPESTATUS[0]}" >> "$STATUS"

# --- DALI loader (issue 6): mixed decode img/s, max side 512 and 256, hw_decoder_load 0/.5/.75/1,
# beside the CPU loader on all cores; writes $OUT/gpu_dali_cuda.json (machine named inside) ----
echo "== DALI loader benchmark"
if "$PY" -c "import nvidia.dali" 2>/dev/null; then
    timeout 120 "$PY" benchmarks/gpu_dali.py --device cuda --json "$OUT/gpu_dali_cuda.json" \
        2>&1 | tee "$OUT/gpu_dali.log"
    echo "gpu_dali rc=${PIPESTATUS[0]}" >> "$STATUS"
else
    echo "gpu_dali skipped: nvidia.dali not installed (pip install 'fastdeit[dali]')" | tee -a "$STATUS"
fi

# --- device augmentation (issue 5): DeviceAugment img/s on the GPU (RandAugment, erase, mix,
# bf16 channels_last) beside timm's per-image PIL pipeline on one CPU core; writes
# $OUT/augment_cuda.json (machine and GPU named inside) ------------------------------------------
echo "== device augmentation benchmark"
timeout 40 "$PY" benchmarks/bench_augment.py --device cuda --images 1024 --batch 256 --threads 1 \
    --seconds 5 --json "$OUT/augment_cuda.json" 2>&1 | tee "$OUT/augment_cuda.log"
echo "augment_cuda rc=${PIPESTATUS[0]}" >> "$STATUS"

# --- fused augmentation kernels (issue 13): the per-op torch path against the fused Triton
# kernels at batch 128 and 256, img/s and main-thread CPU ms per batch, timm's per-image PIL
# pipeline per core beside them (targets: >= 100,000 img/s at batch 128, <= 1 ms CPU per batch);
# writes $OUT/gpu_augment_kernels.json. The first call compiles the kernels (tens of seconds) ----
echo "== fused augmentation kernels benchmark"
timeout 150 "$PY" -m fastdeit bench augment --device cuda --json "$OUT/gpu_augment_kernels.json" \
    2>&1 | tee "$OUT/gpu_augment_kernels.log"
echo "gpu_augment_kernels rc=${PIPESTATUS[0]}" >> "$STATUS"

# --- model step (issue 8): img/s and MFU of DeiT-Ti/S/B, attention backends (eager) and
# torch.compile, bf16, batch 256 -----------------------------------------------------------------
echo "== model benchmark"
timeout 170 "$PY" -m fastdeit bench model --device cuda --json "$OUT/gpu_model.json" 2>&1 | tee "$OUT/gpu_model.log"
echo "gpu_model rc=${PIPESTATUS[0]}" >> "$STATUS"

# --- end to end (issue 8): loader -> device augmentation -> step for DeiT-B and DeiT-S, CPU
# loader and DALI, data-wait share and the 8-GPU projection ------------------------------------
echo "== e2e benchmark"
RUNS="deit_b_300ep:cpu deit_s_300ep:cpu"
if "$PY" -c "import nvidia.dali" 2>/dev/null; then RUNS="$RUNS deit_b_300ep:dali"; fi
for run in $RUNS; do
    preset="${run%%:*}"; loader="${run##*:}"
    # as training runs on CUDA: model and loss compiled (model.compile auto)
    timeout 80 "$PY" -m fastdeit bench e2e --preset "$preset" --loader "$loader" --device cuda \
        --json "$OUT/gpu_e2e_${preset}_${loader}.json" 2>&1 | tee -a "$OUT/gpu_e2e.log"
    echo "gpu_e2e_${preset}_${loader} rc=${PIPESTATUS[0]}" >> "$STATUS"
done
timeout 30 "$PY" benchmarks/plot_e2e.py "$OUT"/gpu_e2e_*.json --out "$OUT/gpu_e2e.png" 2>&1 | tee -a "$OUT/gpu_e2e.log"

# --- distillation (issue 7): training-step img/s of DeiT-B/S/Ti distilled without distillation, with
# the online RegNetY-16GF teacher, and from the teacher-logit cache ------------------------------
echo "== distillation benchmark"
timeout 90 "$PY" -m fastdeit bench distill --device cuda --json "$OUT/gpu_distill.json" 2>&1 | tee "$OUT/gpu_distill.log"
echo "gpu_distill rc=${PIPESTATUS[0]}" >> "$STATUS"
