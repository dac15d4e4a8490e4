"""`fastdeit eval --checkpoint CKPT --val VAL [--json]`."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint (top-1/top-5, per head)",
                              description="Evaluate a fastdeit checkpoint on a validation set with the "
                                          "recipe's eval transform (resize, centre crop, bicubic).")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt / best.pt written by fastdeit train")
    p.add_argument("--val", required=True, help="validation data: .beton file, ImageFolder directory or 'demo'")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fastdeit.eval.run import evaluate_checkpoint

    results = evaluate_checkpoint(Path(args.checkpoint), args.val, args.device)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, res in results.items():
            heads = "  ".join(f"{k} {v:.2f}" for k, v in res.items() if k.startswith("top"))
            print(f"{name}: {heads}  ({res['samples']} images)")
    return 0
