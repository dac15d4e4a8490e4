"""`fastdeit teacher-cache`: compute the teacher's logits for a run's views once, offline.

    fastdeit teacher-cache --preset NAME [--teacher-checkpoint CKPT] [--out FILE] [--epochs A:B]
                           [--shard i/n] [--resume] [--k K] [--data TRAIN.beton] [--set k=v]...
    fastdeit teacher-cache merge OUT PART...
"""

from __future__ import annotations

import argparse
import errno
import json

from fastdeit.cli.config_args import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "teacher-cache",
        help="build a teacher-logit cache for a distilled run (or merge shards)",
        description="Replay the run's views (fast loader + device augmentation, the exact mixed inputs "
                    "training will see) through the teacher and store its top-k logits per (epoch, "
                    "position). Train from it with --set distill.cache=FILE. Values come from the preset, "
                    "then --config, then --set, as for `fastdeit train`. Shard over processes/GPUs with "
                    "--shard i/n (one file each), then `fastdeit teacher-cache merge OUT PART...`.",
    )
    p.add_argument("merge", nargs="*", metavar="merge OUT PART", help="merge shard files into OUT")
    add_config_arguments(p)
    p.add_argument("--data", help="training data (.beton); default data.train of the config")
    p.add_argument("--teacher-checkpoint", help="teacher weights (default distill.teacher_checkpoint)")
    p.add_argument("--out", help="cache file to write (default distill.cache of the config)")
    p.add_argument("--epochs", default=None, metavar="A:B", help="epochs [A, B) (default 0:schedule.epochs)")
    p.add_argument("--k", type=int, default=None, help="top-k logits per sample (default 1 for hard, 10 for soft)")
    p.add_argument("--shard", default="0/1", metavar="i/n", help="build the i-th of n parts of the steps")
    p.add_argument("--resume", action="store_true", help="continue an interrupted build of OUT")
    p.add_argument("--threads", type=int, default=0, help="decode threads (default data.workers)")
    p.add_argument("--micro-batch", type=int, default=0, help="teacher batch (default: one global step)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (continue later with --resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_pair(text: str, sep: str, what: str) -> tuple[int, int]:
    a, found, b = text.partition(sep)
    try:
        if not found:
            raise ValueError
        return int(a), int(b)
    except ValueError:
        raise ValueError(f"{what}: expected two integers as 'A{sep}B', got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    if args.merge:
        if args.merge[0] != "merge" or len(args.merge) < 3:
            raise ValueError(f"unexpected arguments {' '.join(args.merge)}; to merge shards: "
                             "fastdeit teacher-cache merge OUT PART...")
        from fastdeit.distill.cache_format import merge_caches

        out = merge_caches(args.merge[1], args.merge[2:])
        print(f"merged {len(args.merge) - 2} parts into {out}")
        return 0
    from fastdeit.config.load import build_config

    if not args.preset and not args.config:
        raise ValueError("give --preset NAME or --config FILE (the run whose views the cache holds)")
    overrides = list(args.overrides)
    for flag, key in ((args.data, "data.train"), (args.teacher_checkpoint, "distill.teacher_checkpoint")):
        if flag is not None:
            overrides.append(f"{key}={json.dumps(flag)}")
    config = build_config(args.preset, args.config, overrides)
    out_path = args.out or config.distill.cache
    if not out_path:
        raise ValueError("--out FILE is required (the config sets no distill.cache)")
    epochs = parse_pair(args.epochs, ":", "--epochs") if args.epochs else (0, config.schedule.epochs)
    shard = parse_pair(args.shard, "/", "--shard")
    try:
        out = build(args, config, out_path, epochs, shard)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise ValueError(f"no space left on the device writing {out_path}.partial (the steps written so far "
                             "are kept): free some space, then run the same command with --resume to continue") from None
        raise
    if out is None:
        print(f"stopped after --max-steps {args.max_steps}; continue with --resume")
    else:
        print(f"wrote {out}" + (f" (shard {shard[0]}/{shard[1]}; merge the shards with "
                                "`fastdeit teacher-cache merge OUT PART...`)" if shard[1] > 1 else ""))
    return 0


def build(args: argparse.Namespace, config, out_path: str, epochs: tuple[int, int], shard: tuple[int, int]):
    from fastdeit.distill.build_cache import build_teacher_cache

    return build_teacher_cache(
        out_path, data=config.data, augment=config.augment, distill=config.distill, seed=config.run.seed,
        epochs=epochs, k=args.k, device=config.run.device, precision=config.run.precision, shard=shard,
        resume=args.resume, threads=args.threads or config.data.workers, micro_batch=args.micro_batch,
        max_steps=args.max_steps, progress=not args.no_progress,
    )
