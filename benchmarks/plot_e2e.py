"""Figures and the same-GPU table from recorded `fastdeit bench e2e --json` results (e.g. each
preset of a GPU check), side by side:

    python benchmarks/plot_e2e.py benchmarks/results/gpu_h200/e2e_*.json --out e2e.png
    python benchmarks/plot_e2e.py RESULTS... --same-gpu same_gpu.png --table same_gpu.md [--batch 128]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastdeit.bench.e2e_plot import markdown_table, plot_e2e, plot_same_gpu


def main(argv: list[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="JSON files written by `fastdeit bench e2e --json FILE`")
    p.add_argument("--out", help="PNG: every row's time split and projected hours")
    p.add_argument("--same-gpu", metavar="PNG", help="PNG: img/s per loader per model at --batch")
    p.add_argument("--table", metavar="MD", help="markdown file: the same-GPU table at --batch")
    p.add_argument("--batch", type=int, default=128, help="per-GPU batch of the same-GPU figure and table")
    args = p.parse_args(argv)
    if not (args.out or args.same_gpu or args.table):
        p.error("nothing to write: give --out, --same-gpu or --table")
    results = []
    for name in args.results:
        try:
            results.append(json.loads(Path(name).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"{name}: not a readable e2e result ({err})")
    written = []
    if args.out:
        written.append(plot_e2e(results, Path(args.out)))
    if args.same_gpu:
        written.append(plot_same_gpu(results, Path(args.same_gpu), args.batch))
    if args.table:
        path = Path(args.table)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(markdown_table(results, args.batch) + "\n")
        tmp.replace(path)
        written.append(path)
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
