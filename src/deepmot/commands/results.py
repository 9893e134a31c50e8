"""``deepmot results DIR...``: generate the results page from ``deepmot reproduce`` folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepmot.commands._args import HelpFormatter, existing_dir, output_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "results",
        help="generate docs/results.md from 'deepmot reproduce' folders",
        description=(
            "Read every results.json under the folders (written by 'deepmot reproduce') and "
            "write the results page: per table our rows beside the paper's, the settings, "
            "seeds, machine and wall time, and the registered explanation of the differences; "
            "each table's plot is copied next to the page (results/<table>.png)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "folders", type=existing_dir, nargs="+", metavar="DIR", help="reproduce output folders"
    )
    parser.add_argument(
        "--out", type=output_file, default=Path("docs/results.md"), help="the page to write"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deepmot.reproduce.page import write_results_page

    command = " ".join(["deepmot results", *map(str, args.folders), "--out", str(args.out)])
    page = write_results_page(args.folders, args.out, command)
    print(f"wrote {page}")
    return 0
