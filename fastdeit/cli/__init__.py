"""The `fastdeit` command. Each subcommand lives in its own module exposing
`register(subparsers)`, which adds a parser whose `func(args) -> int` runs it."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# One module per subcommand, in the order `fastdeit --help` lists them.
SUBCOMMAND_MODULES = [
    "fastdeit.cli.train",
    "fastdeit.cli.eval",
    "fastdeit.cli.analyze",
    "fastdeit.cli.presets",
    "fastdeit.cli.prepare",
    "fastdeit.cli.inspect",
    "fastdeit.cli.bench",
    "fastdeit.cli.teacher_cache",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastdeit",
        description="Train DeiT with the paper's recipe, fast: prepare data, train, distil, evaluate, benchmark.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name) is None:  # a subcommand not in this checkout
            continue
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # bad input: a clear message, no traceback
        print(f"fastdeit {args.command}: error: {without_worker_traceback(err)}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"fastdeit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:  # a diverged run (NaN/inf loss): what to change, no traceback
        print(f"fastdeit {args.command}: error: {err}", file=sys.stderr)
        return 1


def without_worker_traceback(err: BaseException) -> str:
    """The message of an error; for one re-raised from a DataLoader worker (whose text carries the
    worker's traceback, "Caught ValueError in DataLoader worker ... Original Traceback ..."), only
    the original message."""
    text = str(err)
    if "Original Traceback (most recent call last)" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.removeprefix(f"{type(err).__name__}: ")


if __name__ == "__main__":
    raise SystemExit(main())
