"""One figure from several recorded `fastdeit bench e2e --json` results (e.g. each preset and loader
of a GPU check), side by side:

    python benchmarks/plot_e2e.py benchmarks/results/gpu_h200/gpu_e2e_*.json --out e2e.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastdeit.bench.e2e_plot import plot_e2e


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="JSON files written by `fastdeit bench e2e --json FILE`")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    results = []
    for name in args.results:
        try:
            results.append(json.loads(Path(name).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"{name}: not a readable e2e result ({err})")
    out = plot_e2e(results, Path(args.out))
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
