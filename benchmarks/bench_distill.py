"""Distilled training-step throughput: no distillation vs online teacher vs teacher-logit cache.

    python benchmarks/bench_distill.py [--json benchmarks/results/distill_cpu.json]
    python benchmarks/bench_distill.py --device cuda --student deit_base_distilled_patch16_224 \
        --teacher regnety_160 --img-size 224 --batch 128 --num-classes 1000 --json benchmarks/results/distill_gpu.json

(same as `python -m fastdeit.bench.distill`; see fastdeit/bench/distill.py)
"""

import sys

from fastdeit.bench.distill import main

if __name__ == "__main__":
    sys.exit(main())
