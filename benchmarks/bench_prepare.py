"""Prepare throughput (images/s per worker) and output size, fastdeit vs FFCV's DatasetWriter.

    python benchmarks/bench_prepare.py --images 1000 --workers 1 2 --out benchmarks/results/prepare_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fastdeit.bench.prepare import run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1000, help="generated ImageNet-sized photo crops (default 1000)")
    p.add_argument("--src", default=None, help="use this ImageFolder instead of generated images")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--max-res", type=int, default=512)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--mode", default="jpg", choices=["jpg", "raw", "smart", "proportion"])
    p.add_argument("--repeats", type=int, default=1, help="best of N per measurement")
    p.add_argument("--no-ffcv", action="store_true")
    p.add_argument("--note", default="", help="free text stored with the results (e.g. the machine)")
    p.add_argument("--out", default=None, help="write the results JSON here")
    args = p.parse_args()
    result = run(n_images=args.images, workers=args.workers, max_res=args.max_res, quality=args.quality,
                 mode=args.mode, src=args.src, include_ffcv=not args.no_ffcv, repeats=args.repeats)
    result["note"] = args.note
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
