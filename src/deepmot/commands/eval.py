"""``deepmot eval GT_ROOT RESULTS``: CLEAR MOT, identity and HOTA measures, as the reference.

Evaluates result files (``RESULTS/<sequence>.txt``, or TrackEval's ``<tracker>/data/`` folders)
against the sequences of ``GT_ROOT`` (sequence folders, TrackEval's layout with seqmaps, or
KITTI tracking) with TrackEval's preprocessing, prints one table per metric family (a row per
sequence and COMBINED), a comparison table of several trackers, and optionally writes JSON,
CSV, per-frame event files, TrackEval's summary and detailed files, and plots. Sequences are
evaluated in parallel processes (``--workers``).

ID switches are counted as the MOTChallenge devkit and TrackEval count them: a gt object
matched to a tracker id other than the one it was last matched to, any number of frames
earlier. py-motmetrics counts differently and can report other IDSW (and MOTA) on the same
files.

Only the standard library is imported at module level; the evaluator (NumPy/SciPy, no torch)
is imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from deepmot.commands._args import SEQUENCES_HELP, output_file

log = logging.getLogger(__name__)

#: The command leaves no file open and no process running: ``deepmot.cli.entry`` may skip the
#: interpreter's teardown (25-45 ms of CPU).
EXIT_WITHOUT_TEARDOWN = True

METRIC_CHOICES = ("hota", "clear", "identity")
BENCHMARK_CHOICES = (
    "auto",
    "MOT15",
    "MOT16",
    "MOT17",
    "MOT20",
    "DanceTrack",
    "SportsMOT",
    "KITTI",
)

#: = ``deepmot.metrics.writers.ID_SWITCHES`` (a test keeps them equal; this module stays
#: standard-library only)
IDSW_HELP = (
    "ID switches follow the MOTChallenge devkit and TrackEval: a gt object matched to another "
    "tracker id than the one it was last matched to, any number of frames before, counts one "
    "IDSW (py-motmetrics counts differently)."
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="CLEAR MOT, identity and HOTA measures of result files, identical to TrackEval",
        description=(
            "Evaluate tracker result files against ground truth with TrackEval's preprocessing "
            "and measures. GT_ROOT: a folder of MOTChallenge sequence folders (gt/gt.txt; "
            "seqinfo.ini optional, else the length is the last frame with a box), TrackEval's "
            "gt/mot_challenge/ folder (with seqmaps/<BENCHMARK>-<split>.txt) or one of its "
            "<BENCHMARK>-<split>/ folders, or a KITTI tracking folder (label_02/ and "
            "evaluate_tracking.seqmap.<split>). RESULTS: a folder of <sequence>.txt files (one "
            "tracker) or of tracker folders <name>/data/<sequence>.txt (TrackEval's "
            "trackers/mot_challenge/[<BENCHMARK>-<split>/]); several trackers get a comparison "
            "table. MOTChallenge: gt with flag 0 ignored, pedestrians only, tracker boxes "
            "matched to distractors removed (not for MOT15), IoU threshold 0.5; DanceTrack and "
            "SportsMOT as MOT17. KITTI: car and pedestrian separately, with TrackEval's "
            "Kitti2DBox preprocessing."
        ),
        epilog=IDSW_HELP,
    )
    parser.add_argument("gt_root", metavar="GT_ROOT", type=Path, help="ground truth (see above)")
    parser.add_argument(
        "results_dir",
        metavar="RESULTS",
        type=Path,
        help="a folder of <sequence>.txt result files, or of tracker folders <name>/data/",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=METRIC_CHOICES,
        default=list(METRIC_CHOICES),
        metavar="METRIC",
        help="metric families: clear identity hota (default: all)",
    )
    parser.add_argument(
        "--benchmark",
        choices=BENCHMARK_CHOICES,
        default="auto",
        help="preprocessing settings (and TrackEval's <BENCHMARK>-<split> folder); auto: KITTI "
        "for a label_02 folder, else from each sequence's name, else MOT15 for 10-column gt, "
        "else MOT17 (default: auto)",
    )
    parser.add_argument(
        "--split",
        help="TrackEval's split: picks <BENCHMARK>-<split> and its seqmap (default: train; "
        "KITTI: training)",
    )
    parser.add_argument("--seqmap", type=Path, help="a seqmap file listing the sequences")
    parser.add_argument(
        "--sequences",
        nargs="+",
        metavar="NAME",
        help=f"{SEQUENCES_HELP} (default: all of GT_ROOT or its seqmap)",
    )
    parser.add_argument(
        "--trackers",
        nargs="+",
        metavar="NAME",
        help="evaluate only these trackers of a folder of tracker folders (default: all)",
    )
    parser.add_argument(
        "--tracker-sub-folder",
        default="data",
        metavar="NAME",
        help="the folder of result files inside a tracker folder (default: data)",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        metavar="CLASS",
        help="classes to evaluate (KITTI: car pedestrian; MOTChallenge: pedestrian)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes evaluating sequences in parallel (default: the machine's processors); "
        "the numbers do not depend on it",
    )
    parser.add_argument(
        "--out", type=output_file, help="write every field per sequence and COMBINED as JSON"
    )
    parser.add_argument(
        "--csv",
        type=output_file,
        help="write every field per sequence and COMBINED as CSV (one tracker and class)",
    )
    parser.add_argument(
        "--events",
        type=output_file,
        help="write per-frame FP, FN and IDSW events with ids as CSV "
        "(sequence,frame,type,gt_id,tracker_id,prev_tracker_id,iou; one tracker and class)",
    )
    parser.add_argument(
        "--output-folder",
        type=Path,
        metavar="DIR",
        help="write TrackEval's files DIR/<tracker>/<class>_summary.txt and "
        "<class>_detailed.csv (same columns and formatting)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write PNG plots to DIR: HOTA, DetA and AssA against the alpha threshold per "
        "tracker, and MOTA, IDF1 and HOTA per sequence",
    )
    parser.add_argument(
        "--frames",
        choices=["all", "val"],
        default="all",
        help="score every frame, or only the validation frames (the last 25%% of each "
        "sequence, never trained on), as 'deepmot track --split val' writes them",
    )
    parser.set_defaults(run=run)


def _write(path: Path, text: str) -> None:
    """Write atomically (temporary file, then rename) without forcing it to disk: a crash
    leaves the old file or the new one, never half of one; these are outputs that the same
    command writes again, so an fsync (0.3 s on some disks) buys nothing."""
    from deepmot.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def run(args: argparse.Namespace) -> int:
    import os

    # The evaluation does no large linear algebra: OpenBLAS's thread pool, started when NumPy
    # is imported, only costs start-up time (measured: 0.17 s -> 0.12 s to import NumPy on a
    # busy 2-core machine). A value the user set is kept.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    from deepmot.metrics.evaluate import EvaluationError, default_workers, evaluate_trackers
    from deepmot.metrics.writers import events_csv, format_tables, to_csv, to_json

    if args.plots is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:  # said before the work, not after
            raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        raise EvaluationError(f"--workers must be >= 1, got {workers}")
    try:
        by_tracker = evaluate_trackers(
            args.gt_root,
            args.results_dir,
            args.metrics,
            benchmark=args.benchmark,
            split=args.split,
            seqmap=args.seqmap,
            sequences=args.sequences,
            classes=args.classes,
            tracker_names=args.trackers,
            tracker_sub_folder=args.tracker_sub_folder,
            workers=workers,
            with_events=args.events is not None,
            frames=args.frames,
        )
    except ValueError as error:  # a bad --classes for the data
        raise EvaluationError(str(error)) from None
    pairs = [(t, c, ev) for t, by_cls in by_tracker.items() for c, ev in by_cls.items()]
    several = len(pairs) > 1
    blocks = []
    for tracker, cls, evaluation in pairs:
        title = f"== {tracker} ({cls}) ==\n" if several else ""
        blocks.append(title + format_tables(evaluation))
    if len(by_tracker) > 1:
        from deepmot.metrics.report import comparison_table

        classes = next(iter(by_tracker.values()))
        for cls in classes:
            blocks.append(comparison_table({t: by_cls[cls] for t, by_cls in by_tracker.items()}))
    print("\n\n".join(blocks))

    single = pairs[0][2] if not several else None
    if args.out is not None:
        if single is not None:
            payload = to_json(single)
        else:
            payload = {
                "trackers": {
                    t: {c: to_json(ev) for c, ev in by_cls.items()}
                    for t, by_cls in by_tracker.items()
                }
            }
        import json  # here: 6 ms of start-up that a run without --out does not need

        _write(args.out, json.dumps(payload, indent=1) + "\n")
        log.info("wrote %s", args.out)
    for flag, path, writer in (("--csv", args.csv, to_csv), ("--events", args.events, events_csv)):
        if path is None:
            continue
        if single is None:
            raise EvaluationError(
                f"{flag} writes one tracker and one class, not {len(pairs)} "
                "(use --output-folder, or --trackers and --classes)"
            )
        _write(path, writer(single))
        log.info("wrote %s", path)
    if args.output_folder is not None:
        from deepmot.metrics.report import detailed_text, summary_text

        for tracker, cls, evaluation in pairs:
            folder = args.output_folder / tracker
            _write(folder / f"{cls}_summary.txt", summary_text(evaluation))
            _write(folder / f"{cls}_detailed.csv", detailed_text(evaluation))
        log.info("wrote TrackEval's summary and detailed files under %s", args.output_folder)
    if args.plots is not None:
        from deepmot.metrics.plots import write_plots

        for path in write_plots(by_tracker, args.plots):
            log.info("wrote %s", path)
    return 0
