"""The ``deepmot`` command.

Each subcommand lives in ``deepmot.commands.<name>`` and exposes ``add_parser(subparsers)``
and ``run(args) -> int``. Command modules import only the standard library at module level,
so building the parser is cheap and a command pays only for what it uses (``deepmot eval``
never imports torch).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from deepmot import __version__
from deepmot.commands import COMMANDS
from deepmot.errors import DeepMOTError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepmot",
        description="Train multi-object trackers on the measures they are judged by (DeepMOT).",
    )
    parser.add_argument("--version", action="version", version=f"deepmot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"deepmot.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except DeepMOTError as error:
        print(f"deepmot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        detail = f": {error}" if str(error) else ""
        print(f"deepmot {args.command}: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
