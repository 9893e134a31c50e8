"""The ``deepmot`` command.

Each subcommand lives in ``deepmot.commands.<name>`` and exposes ``add_parser(subparsers)``
and ``run(args) -> int``. Command modules import only the standard library at module level,
so building the parser is cheap and a command pays only for what it uses (``deepmot eval``
never imports torch).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import logging
import os
import sys
from typing import NoReturn

from deepmot import __version__
from deepmot.commands import COMMANDS
from deepmot.commands._args import missing_extra_message
from deepmot.errors import DeepMOTError

# Commands that run on the core install (NumPy, SciPy, tqdm): no torch pair to check.
_CORE_COMMANDS = {"eval", "results", "synth"}
_CPU_WHEELS = "https://download.pytorch.org/whl/cpu"


def torch_pair_message() -> str | None:
    """One line naming an installed torch and torchvision that do not fit each other, or None.

    Read from the packages' metadata, without importing them. torchvision 0.N is built for
    torch 2.(N - 15) (0.15 for 2.0 onwards); a CPU-only build (``+cpu``) beside a CUDA one
    fails at import with ``operator torchvision::nms does not exist``.
    """
    from importlib import metadata

    try:
        torch_version = metadata.version("torch")
        vision_version = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        return None
    torch_release, _, torch_build = torch_version.partition("+")
    vision_release, _, vision_build = vision_version.partition("+")
    try:
        torch_major, torch_minor = (int(x) for x in torch_release.split(".")[:2])
        vision_major, vision_minor = (int(x) for x in vision_release.split(".")[:2])
    except ValueError:  # a version scheme we do not know: nothing to say
        return None
    fits = torch_major != 2 or (vision_major, vision_minor) == (0, torch_minor + 15)
    # the builds differ (a PyPI wheel has no tag): +cpu, +cu126, +rocm6.2 are the ones known
    known = any(b.startswith(("cpu", "cu", "rocm")) for b in (torch_build, vision_build))
    if torch_build != vision_build and known:
        fits = False
    if fits:
        return None
    return torch_pair_hint(f"torchvision {vision_version} does not fit torch {torch_version}")


def torch_pair_hint(problem: str) -> str:
    """``problem`` and the command that installs a matching pair."""
    return (
        f"{problem}: reinstall them as a pair, e.g. pip install --force-reinstall torch "
        f"torchvision (CPU only: add --index-url {_CPU_WHEELS})"
    )


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``deepmot train: error: argument
    --iterations: must be an integer >= 1, got 0 (see 'deepmot train --help')``, exit code 2.

    Subcommands' parsers are of the same class (argparse copies the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` one command's (its module alone is imported: a command
    then does not pay for importing the others, 30-40 ms for ``deepmot eval``)."""
    parser = Parser(
        prog="deepmot",
        description="Train multi-object trackers on the measures they are judged by (DeepMOT).",
    )
    parser.add_argument("--version", action="version", version=f"deepmot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"deepmot.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the command is the first argument unless options precede it: then every command is built
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    prog = " ".join(
        [
            "deepmot",
            args.command,
            *([step] if (step := getattr(args, f"{args.command}_command", None)) else []),
        ]
    )
    try:
        if args.command not in _CORE_COMMANDS and (problem := torch_pair_message()):
            raise DeepMOTError(problem)
        return int(args.run(args) or 0)
    except ModuleNotFoundError as error:
        if (message := missing_extra_message(error)) is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        # torchvision's compiled operators missing: a torchvision built for another torch
        if "torchvision::" not in str(error):
            raise
        first = str(error).strip().splitlines()[0]
        print(f"{prog}: error: {torch_pair_hint(first)}", file=sys.stderr)
        return 2
    except DeepMOTError as error:
        # every user mistake: one line naming the argument or file and what to do, no traceback
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path the system refuses: unwritable, missing parent, disk full
        where = f"{error.filename}: " if error.filename else ""
        print(
            f"{prog}: error: {where}{error.strerror or error} (check the path and its permissions)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as error:
        detail = f": {error}" if str(error) else ""
        print(f"{prog}: interrupted{detail}", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The process's entry point (the ``deepmot`` script, ``python -m deepmot``): :func:`main`,
    then exit with its code.

    A command whose module sets ``EXIT_WITHOUT_TEARDOWN = True`` (it leaves no file open and no
    process running) ends without tearing the interpreter down: exit handlers still run
    (logging, multiprocessing, temporary folders) and stdout/stderr are flushed, only the
    freeing of every module and object is skipped, 25-45 ms of CPU once NumPy was imported
    (a sixth of evaluating two MOT17 sequences).
    """
    argv = sys.argv[1:]
    code = main(argv)
    module = sys.modules.get(f"deepmot.commands.{argv[0]}") if argv else None
    if getattr(module, "EXIT_WITHOUT_TEARDOWN", False):
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
