"""``deepmot reproduce TABLE``: run one of the paper's tables into a folder (see
:mod:`deepmot.reproduce`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deepmot.commands._args import HelpFormatter, key_value, output_dir
from deepmot.errors import DeepMOTError

log = logging.getLogger(__name__)

#: The registered tables, for the help text (the registry's table modules are imported only
#: when the command runs; a test keeps this equal to :func:`deepmot.reproduce.list_tables`).
TABLES = (
    "comparison",
    "correlation",
    "dhn",
    "loss-ablation",
    "loss-ablation-goturn",
    "loss-ablation-siamrpn",
    "loss-ablation-tracktor",
    "real",
    "sot",
    "tracktor",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run one of the paper's tables (ours beside the paper's) into a folder",
        description=(
            "Run TABLE and write OUT/TABLE/: results.json (rows as mean and std over the seeds, "
            "each seed's rows, the paper's rows, the resolved settings, library versions, the "
            "machine, the wall time), table.md and plot.png; results.json is written after "
            "every seed, and each finished seed's rows are kept in OUT/TABLE/seed<N>/rows.json, "
            "so a stopped run continues with --resume. --scale cpu finishes in under 30 "
            "minutes on a 2-core CPU (real: about 50); --scale full is what a GPU user runs. "
            "'deepmot results OUT' turns the folders into the results page."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("table", nargs="?", metavar="TABLE", help=f"the table: {', '.join(TABLES)}")
    parser.add_argument("--scale", choices=["cpu", "full"], default="cpu", help="run size")
    parser.add_argument("--out", type=output_dir, default=Path("runs/reproduce"), help="folder")
    parser.add_argument(
        "--seeds", type=int, nargs="+", metavar="SEED", help="replace the scale's seeds"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="MOT_ROOT",
        help="folder of MOTChallenge sequences (MOT17 with the DeepMOT authors' cleaned "
        "detections, det/deepmot_clean_FRCNN.txt; tracktor, sot and loss-ablation-<tracker> "
        "make their own scenes; real reads sequence folders with img1/, gt and det, e.g. "
        "PETS09-S2L1 made by 'deepmot frames'); default: ../shared/data/mot",
    )
    parser.add_argument(
        "--set",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of the scale's settings (repeatable; see --list), e.g. --set "
        "iterations=50",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT/TABLE with the same settings: finished seeds are kept and "
        "read back, the others run (without it, a folder holding a run is an error)",
    )
    parser.add_argument("--list", action="store_true", help="list the tables and their scales")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from deepmot.reproduce import get_table, list_tables
    from deepmot.reproduce.run import reproduce_table

    torch.set_num_threads(1)
    if args.list:
        for name in list_tables():
            spec = get_table(name)
            print(f"{name}: {spec.title} ({spec.paper_ref} layout)")
            for scale, settings in spec.scales.items():
                print(f"  --scale {scale}: {json.dumps(dict(settings))}")
        return 0
    if args.table is None:
        raise DeepMOTError(f"TABLE: give one of {', '.join(list_tables())} (or --list)")
    if args.table not in list_tables():
        raise DeepMOTError(f"TABLE {args.table}: unknown; valid: {', '.join(list_tables())}")
    data = args.data or Path("../shared/data/mot")
    if get_table(args.table).reads_data and not data.is_dir():
        raise DeepMOTError(f"--data {data}: no such folder; give --data MOT_ROOT")
    known = get_table(args.table).scales[args.scale]
    for key, _ in args.set:
        if key not in known or key == "seeds":
            raise DeepMOTError(
                f"--set {key}: not a setting of table {args.table} (settings: "
                f"{', '.join(k for k in known if k != 'seeds')}; seeds: --seeds)"
            )
    folder = reproduce_table(
        args.table,
        args.out,
        data,
        args.scale,
        args.seeds,
        progress=not args.no_progress,
        overrides=dict(args.set),
        resume=args.resume,
    )
    print((folder / "table.md").read_text(), end="")
    plot = json.loads((folder / "results.json").read_text()).get("plot")
    written = ", ".join(["results.json", "table.md", *([plot] if plot else [])])
    print(f"written: {folder}/ ({written}); page: deepmot results {args.out}")
    return 0
