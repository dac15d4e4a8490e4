"""`fastdeit train`: train a preset, optionally overridden, on one process or under torchrun."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from fastdeit.cli.config_args import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train DeiT with a preset recipe",
        description="Train DeiT with the paper's recipe. Values come from the preset, then --config, "
                    "then each --set key=value (e.g. --set optim.lr=1e-3 --set data.global_batch=512). "
                    "Run distributed with: torchrun --nproc-per-node N -m fastdeit train ...",
        epilog="SIGTERM, SIGUSR1 (e.g. SLURM's --signal=USR1@120) or a first Ctrl-C finish the current step, "
               "write OUT/checkpoint.pt and exit with code 75 (EX_TEMPFAIL); --resume continues exactly. A second "
               "Ctrl-C aborts at once (exit 130). run.checkpoint_every_minutes (default 30) also writes such "
               "step checkpoints. Other exit codes: 0 done, 1 failure, 2 bad input. "
               "data.workers, per rank: decode threads for data.loader=cpu, DALI CPU threads for dali, "
               "DataLoader worker processes for reference. cpu/dali take at most all cores but one; "
               "torch's and numba's threads take the rest, so no pool outgrows the cores.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--data", help="training data: a .beton file, an ImageFolder directory, or 'demo'")
    p.add_argument("--val", help="validation data, same kinds as --data")
    p.add_argument("--out", help="run directory (default runs/<preset>); a directory holding a run is refused "
                                 "without --resume")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (exactly, mid-epoch too)")
    p.add_argument("--json", action="store_true", help="print the final evaluation as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastdeit.config.load import build_config
    from fastdeit.train.distributed import MainRankFailed
    from fastdeit.train.loop import train
    from fastdeit.train.preemption import EXIT_PREEMPTED, TrainingStopped

    overrides = list(args.overrides)
    for flag, key in ((args.data, "data.train"), (args.val, "data.val"), (args.out, "run.out")):
        if flag is not None:
            overrides.append(f"{key}={json.dumps(flag)}")
    if not args.preset and not args.config:
        raise ValueError("give --preset NAME or --config FILE (see `fastdeit presets list`)")
    config = build_config(args.preset, args.config, overrides)
    check_distill_inputs(config, args)
    try:
        final = train(config, preset=args.preset, resume=args.resume)
    except TrainingStopped as stopped:
        print(f"fastdeit train: {stopped}", file=sys.stderr)
        return EXIT_PREEMPTED
    except MainRankFailed as err:  # this rank is fine; rank 0 said why it stopped
        print(f"fastdeit train: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastdeit train: aborted by a second Ctrl-C; --resume continues from the last checkpoint written",
              file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(final, indent=2))
    elif final:
        print(f"final: top1 {final['top1']:.2f}% top5 {final['top5']:.2f}%"
              + (f" (EMA top1 {final['ema']['top1']:.2f}%)" if "ema" in final else ""))
    return 0


def check_distill_inputs(config, args: argparse.Namespace) -> None:
    """Before any work: a run reading a teacher cache needs the teacher and the cache; say which
    command makes the one that is missing (the teacher first: the cache is built from it)."""
    from pathlib import Path

    from fastdeit.distill.teacher import train_first_hint

    distill = config.distill
    if distill.kind == "none" or not distill.cache:
        return
    teacher = Path(distill.teacher_checkpoint)
    if distill.teacher_checkpoint and not teacher.is_file():
        raise ValueError(f"distill.teacher_checkpoint: no such file {teacher}{train_first_hint(teacher)}")
    if not Path(distill.cache).is_file():
        command = ["fastdeit", "teacher-cache"]
        command += ["--preset", args.preset] if args.preset else []
        command += ["--config", args.config] if args.config else []
        command += ["--data", args.data] if args.data is not None else []
        for item in args.overrides:
            command += ["--set", item]
        raise ValueError(f"distill.cache: no such file {distill.cache}; build it first: {shlex.join(command)}")
