"""`fastdeit inspect FILE.beton [--json] [--export N DIR]`."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="summarize a dataset file (.beton)",
        description="Sample count, fields, label histogram, image sizes and bytes per sample of a .beton file.",
    )
    p.add_argument("file", help=".beton file")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--verify", action="store_true",
                   help="decode every sample and report those that fail (file and index); exit status 1 if any")
    p.add_argument("--export", nargs=2, metavar=("N", "DIR"), help="also write the first N decoded samples as PNG files into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastdeit.data.beton import BetonReader
    from fastdeit.data.inspect import export_samples, format_summary, has_problems, summarize

    with BetonReader(args.file, check_labels=False) as reader:  # bad labels are reported, not refused
        summary = summarize(reader, verify=args.verify)
        exported = []
        if args.export:
            n_text, out_dir = args.export
            try:
                n = int(n_text)
            except ValueError:
                raise ValueError(f"--export N must be an integer, got {n_text!r}") from None
            exported = [str(p) for p in export_samples(reader, n, out_dir)]
            summary["exported"] = exported
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(format_summary(summary))
            if exported:
                print(f"exported {len(exported)} samples to {args.export[1]}")
    return 1 if has_problems(summary) else 0
