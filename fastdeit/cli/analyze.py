"""`fastdeit analyze --checkpoint DISTILLED.pt --val VAL [--teacher CKPT] [--baseline CKPT]`: the DeiT
paper's analysis of distillation through attention."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """\
The DeiT paper's analysis of a distilled model (Touvron et al. 2021, sec. 5.1), on a validation set
with the recipe's eval transform:

  - cosine similarity between the class and distillation tokens per layer: the learned token
    embeddings ("embedding"), the output of every block, and the final norm the heads read (the
    paper: 0.06 for the embeddings, 0.93 at the last layer);
  - disagreement between classifiers: the fraction of images two of them classify differently,
    pairwise, for the ground truth, a non-distilled baseline (--baseline), the teacher (--teacher)
    and the distilled model's class head, distillation head and their average; and each one's top-1.

Writes analysis.json and analysis.png into --out (default: the checkpoint's folder) and prints a
table (or the JSON with --json)."""

EPILOG = """\
examples:
  fastdeit analyze --checkpoint runs/demo_distilled/best.pt --val demo --baseline runs/demo/best.pt
  fastdeit analyze --checkpoint runs/deit_s_distilled_300ep/best.pt --val val.beton \\
      --teacher regnety_160-a5fe301d.pth --teacher-model regnety_160 \\
      --baseline runs/deit_s_300ep/best.pt"""


def register(subparsers) -> None:
    p = subparsers.add_parser("analyze", help="token cosine per layer and disagreement of a distilled model",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="a distilled model's checkpoint.pt / best.pt (deit_*_distilled_*) written by fastdeit train")
    p.add_argument("--val", required=True, help="validation data: .beton file, ImageFolder directory or 'demo'")
    p.add_argument("--teacher", default=None,
                   help="the teacher's weights: a fastdeit checkpoint (any timm model) or a timm state dict "
                        "(bare or under 'model', like deit's regnety_160 file). Default: the "
                        "distill.teacher_checkpoint the checkpoint's recipe names, if that file exists")
    p.add_argument("--teacher-model", default=None,
                   help="timm model name of --teacher (default: the one a fastdeit checkpoint records, "
                        "else the recipe's distill.teacher)")
    p.add_argument("--no-teacher", action="store_true", help="leave the teacher out")
    p.add_argument("--baseline", default=None,
                   help="a non-distilled model's checkpoint (same classes and image size) to compare with")
    p.add_argument("--weights", default="model", choices=("model", "ema"),
                   help="which weights of --checkpoint and --baseline to analyse (default: model)")
    p.add_argument("--out", default=None, help="folder for analysis.json / analysis.png (default: the "
                                               "checkpoint's folder)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.set_defaults(func=run)


def recipe_teacher(checkpoint) -> str | None:
    """The teacher file the distilled run was trained from, if the recipe names one that exists."""
    from pathlib import Path

    from fastdeit.eval.run import read_checkpoint

    _, config = read_checkpoint(Path(checkpoint))
    path = config.distill.teacher_checkpoint
    return path if path and Path(path).is_file() else None


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from fastdeit.eval.analysis import format_table, run_analysis, write_analysis

    if args.no_teacher and args.teacher:
        raise ValueError("--teacher and --no-teacher contradict each other")
    teacher = None if args.no_teacher else (args.teacher or recipe_teacher(args.checkpoint))
    if teacher and not args.teacher:
        print(f"teacher: {teacher} (the recipe's distill.teacher_checkpoint; --no-teacher to leave it out)",
              file=sys.stderr)
    result = run_analysis(Path(args.checkpoint), args.val, teacher=Path(teacher) if teacher else None,
                          teacher_model=args.teacher_model, baseline=Path(args.baseline) if args.baseline else None,
                          device_name=args.device, weights=args.weights)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    json_path, png_path = write_analysis(result, out)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
        print(f"\nwrote {json_path} and {png_path}")
    return 0
