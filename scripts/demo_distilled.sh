#!/usr/bin/env bash
# The distillation demo end to end: a convnet teacher, its teacher-logit cache, the distilled student.
# Extra arguments (e.g. --set run.progress=plain) go to every step.
set -euo pipefail
fastdeit train --preset demo_teacher "$@"
fastdeit teacher-cache --preset demo_distilled "$@"
fastdeit train --preset demo_distilled "$@"
fastdeit eval --checkpoint runs/demo_distilled/best.pt --val demo
