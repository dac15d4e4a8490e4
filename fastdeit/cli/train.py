"""`fastdeit train`: train a preset, optionally overridden, on one process or under torchrun."""

from __future__ import annotations

import argparse
import json

from fastdeit.cli.config_args import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train DeiT with a preset recipe",
        description="Train DeiT with the paper's recipe. Values come from the preset, then --config, "
                    "then each --set key=value (e.g. --set optim.lr=1e-3 --set data.global_batch=512). "
                    "Run distributed with: torchrun --nproc-per-node N -m fastdeit train ...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--data", help="training data: a .beton file, an ImageFolder directory, or 'demo'")
    p.add_argument("--val", help="validation data, same kinds as --data")
    p.add_argument("--out", help="run directory (default runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--json", action="store_true", help="print the final evaluation as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastdeit.config.load import build_config
    from fastdeit.train.loop import train

    overrides = list(args.overrides)
    for flag, key in ((args.data, "data.train"), (args.val, "data.val"), (args.out, "run.out")):
        if flag is not None:
            overrides.append(f"{key}={json.dumps(flag)}")
    if not args.preset and not args.config:
        raise ValueError("give --preset NAME or --config FILE (see `fastdeit presets list`)")
    config = build_config(args.preset, args.config, overrides)
    final = train(config, preset=args.preset, resume=args.resume)
    if args.json:
        print(json.dumps(final, indent=2))
    elif final:
        print(f"final: top1 {final['top1']:.2f}% top5 {final['top5']:.2f}%"
              + (f" (EMA top1 {final['ema']['top1']:.2f}%)" if "ema" in final else ""))
    return 0
