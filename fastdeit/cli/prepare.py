"""`fastdeit prepare SRC OUT.beton`: ImageFolder tree or `path,label` list -> one .beton file."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="write a dataset file (.beton) from an image folder",
        description=(
            "Write an FFCV-compatible .beton from SRC: an ImageFolder tree (SRC/CLASS/IMAGE, classes "
            "indexed in sorted order, as torchvision does) or a text file of 'path,label' lines "
            "(relative paths are relative to the file). Images are upright RGB, downscaled to "
            "--max-res on the longest side and re-encoded as baseline 4:2:0 JPEG."
        ),
    )
    p.add_argument("src", help="ImageFolder root, or a text file of 'path,label' lines")
    p.add_argument("out", help="output .beton file")
    p.add_argument("--max-res", type=int, default=512, help="longest side in pixels after area downscaling; 0 keeps (default 512)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality 1..100 (default 90)")
    p.add_argument("--mode", choices=["jpg", "raw", "smart", "proportion"], default="jpg",
                   help="how images are stored, with FFCV's meanings (default jpg)")
    p.add_argument("--smart-threshold", type=int, default=None,
                   help="--mode smart: JPEG-compress images whose raw pixels exceed this many bytes")
    p.add_argument("--compress-probability", type=float, default=0.5,
                   help="--mode proportion: fraction of images stored as JPEG (default 0.5)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoding processes (default: all CPUs)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images (default: all)")
    p.add_argument("--on-error", choices=["skip", "fail"], default="skip",
                   help="an unreadable image: report it and leave it out (skip, default) or stop (fail)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted prepare of OUT")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (never a directory, never one of the input images)")
    p.add_argument("--chunk-size", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastdeit.data.prepare import disk_full_message

    try:
        report = prepare(args)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise ValueError(disk_full_message(Path(args.out))) from None
        raise
    for path, reason in report.skipped_dirs:
        print(f"skipped folder {path}: {reason}", file=sys.stderr)
    for path, reason in report.skipped[:20]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if report.num_skipped > 20:
        print(f"... and {report.num_skipped - 20} more skipped", file=sys.stderr)
    resumed = f", {report.resumed_samples} resumed" if report.resumed_samples else ""
    print(
        f"wrote {report.out}: {report.num_written} images, {report.num_classes} classes, "
        f"{report.num_skipped} skipped{resumed}, {report.file_bytes / 2**20:.1f} MiB, "
        f"{report.images_per_s:.0f} img/s"
    )
    return 0


def prepare(args: argparse.Namespace):
    from fastdeit.data.prepare import prepare_dataset

    return prepare_dataset(
        args.src,
        args.out,
        max_res=args.max_res,
        quality=args.quality,
        mode=args.mode,
        workers=args.workers,
        limit=args.limit,
        on_error=args.on_error,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        smart_threshold=args.smart_threshold,
        compress_probability=args.compress_probability,
        chunk_size=args.chunk_size,
    )
