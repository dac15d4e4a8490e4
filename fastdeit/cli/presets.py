"""`fastdeit presets list | show NAME [--json]`."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("presets", help="list presets or show one resolved",
                              description="The recipes shipped in configs/, resolved against the defaults.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="names and descriptions").set_defaults(func=run_list)
    show = sub.add_parser("show", help="the resolved config of one preset")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="nested JSON instead of TOML")
    show.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    from fastdeit.config.presets import preset_description, preset_names

    names = preset_names()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import tomli_w

    from fastdeit.config.load import build_config, config_to_dict

    table = config_to_dict(build_config(args.name))
    print(json.dumps(table, indent=2) if args.json else tomli_w.dumps(table), end="\n" if args.json else "")
    return 0
