"""The `--preset / --config / --set` arguments every recipe-reading command shares."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="preset name (see `fastdeit presets list`)")
    parser.add_argument("--config", help="TOML file of overrides ([section] key = value)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one config key; repeatable")
