"""Time ``deepmot eval`` against TrackEval as whole commands on the same files; check the numbers.

Inputs (TrackEval's folder layout, built in a temporary folder from ``../shared/data``):

- ``two``: MOT17-05 and MOT17-10 (1,491 frames, 19,756 gt boxes) with the published Lif_T
  results (``fixtures/lif_t_mot17``);
- ``all``: every shared sequence, one command per benchmark: MOT17 with the 15 Lif_T result
  files (5 sequences x 3 detectors), MOT16 and MOT15 with their public detections linked into
  tracks by a frame-to-frame IoU assignment (MOT16 borrows the MOT17 detections of the same video).

Commands: TrackEval as its ``scripts/run_mot_challenge.py`` runs it (serial, its default;
summary and detailed files written; curve plots off, as ``deepmot eval`` draws none unless
asked) and ``python -m deepmot eval GT_ROOT TRACKERS --output-folder DIR`` (the same two files;
``--workers`` default: the machine's processors); with ``--baseline REV`` also deepmot as it
was at git revision ``REV`` (its ``src/``), so that a change is measured before and after in the
same run. The commands run in turn, ``--repeats`` times after a warm-up; the medians of wall
time and of CPU time (user + system of the process and the workers it waited for, the figure a
busy machine disturbs least) are compared. Python modules run from their cached bytecode, as
after ``pip install``: each tool gets its own ``PYTHONPYCACHEPREFIX``, filled by the warm-up,
and ``PYTHONDONTWRITEBYTECODE`` is dropped (``--no-bytecode-cache``: the environment as it is;
where it forbids writing bytecode, deepmot's modules are compiled at every start while
TrackEval's and NumPy's installed bytecode is read). Then the numbers: every field of CLEAR,
Identity and HOTA, per sequence and combined, against TrackEval's (ratios to 1e-9, counts
exactly), and the summary files byte for byte. Last, where deepmot's time goes on each set
(start-up and imports, reading, preprocessing, each metric family, writing).

    python benchmarks/bench_eval.py [--repeats 5] [--workers N] [--baseline REV] [--sets two]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LIFT = SHARED / "fixtures" / "lif_t_mot17"
FAMILIES = {"hota": "HOTA", "clear": "CLEAR", "identity": "Identity"}

TRACKEVAL = """
import sys
from multiprocessing import freeze_support
import trackeval
if __name__ == "__main__":
    freeze_support()
    gt, trk, bench = sys.argv[1:4]
    eval_config = trackeval.Evaluator.get_default_eval_config()
    eval_config["DISPLAY_LESS_PROGRESS"] = False
    eval_config["PLOT_CURVES"] = False
    dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dataset_config.update(GT_FOLDER=gt, TRACKERS_FOLDER=trk, BENCHMARK=bench,
                          SPLIT_TO_EVAL="train")
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
    trackeval.Evaluator(eval_config).evaluate(
        [trackeval.datasets.MotChallenge2DBox(dataset_config)], metrics)
"""


def link(frames: np.ndarray, boxes: np.ndarray, min_iou: float = 0.3) -> np.ndarray:
    """Ids from linking each frame's boxes to the previous frame's (exact IoU assignment)."""
    from scipy.optimize import linear_sum_assignment

    from deepmot.metrics import box_iou_xywh

    ids = np.zeros(len(frames), dtype=np.int64)
    groups = np.split(np.arange(len(frames)), np.flatnonzero(np.diff(frames)) + 1)
    next_id, prev, prev_frame = 1, np.zeros(0, dtype=np.int64), -10
    for rows in groups:
        ids[rows] = np.arange(next_id, next_id + len(rows))
        next_id += len(rows)
        if len(prev) and frames[rows[0]] == prev_frame + 1:
            iou = box_iou_xywh(boxes[prev], boxes[rows])
            r, c = linear_sum_assignment(-iou)
            ok = iou[r, c] >= min_iou
            ids[rows[c[ok]]] = ids[prev[r[ok]]]
        prev, prev_frame = rows, frames[rows[0]]
    return ids


def detection_file(seq_dir: Path) -> Path | None:
    for name in ("det.txt", "deepmot_clean_FRCNN.txt", "det_sort_frcnn.txt"):
        if (seq_dir / "det" / name).is_file():
            return seq_dir / "det" / name
    twin = (
        seq_dir.parent / seq_dir.name.replace("MOT16", "MOT17") / "det" / "deepmot_clean_FRCNN.txt"
    )
    return twin if twin.is_file() else None


def layout(root: Path, benchmark: str, files: dict[str, tuple[Path, Path | None]]) -> Path:
    """TrackEval's layout under ``root``: gt (symlinked sequence folders), seqmap and one
    tracker ``t`` whose result files are copies or, for ``None``, linked detections."""
    from deepmot.io.mot import Results, read_detections, write_results

    gt = root / "gt" / f"{benchmark}-train"
    data = root / "trackers" / f"{benchmark}-train" / "t" / "data"
    data.mkdir(parents=True)
    gt.mkdir(parents=True)
    (root / "gt" / "seqmaps").mkdir()
    (root / "gt" / "seqmaps" / f"{benchmark}-train.txt").write_text(
        "name\n" + "".join(f"{n}\n" for n in files)
    )
    for name, (seq_dir, result) in files.items():
        os.symlink(seq_dir, gt / name)
        if result is not None:
            (data / f"{name}.txt").write_bytes(result.read_bytes())
        else:
            dets = read_detections(detection_file(seq_dir))
            ids = link(dets.frames, dets.boxes_xywh)
            write_results(
                data / f"{name}.txt", Results(dets.frames, ids, dets.boxes_xywh, dets.scores)
            )
    return root


def prepare(tmp: Path) -> dict[str, list[tuple[str, Path]]]:
    """Set name to its (benchmark, folder) commands."""
    mot = SHARED / "mot"
    two = {
        f"MOT17-{s}-FRCNN": (mot / f"MOT17-{s}", LIFT / f"MOT17-{s}-FRCNN.txt")
        for s in ("05", "10")
    }
    mot17 = {p.stem: (mot / p.stem.rsplit("-", 1)[0], p) for p in sorted(LIFT.glob("*.txt"))}
    mot16 = {p.name: (p, None) for p in sorted(mot.glob("MOT16-*"))}
    mot15 = {
        p.name: (p, None)
        for p in sorted(mot.iterdir())
        if not p.name.startswith(("MOT16", "MOT17")) and detection_file(p) is not None
    }
    return {
        "two": [("MOT17", layout(tmp / "two", "MOT17", two))],
        "all": [
            ("MOT17", layout(tmp / "all17", "MOT17", mot17)),
            ("MOT16", layout(tmp / "all16", "MOT16", mot16)),
            ("MOT15", layout(tmp / "all15", "MOT15", mot15)),
        ],
    }


def commands(benchmark: str, root: Path, workers: int | None) -> dict[str, list[str]]:
    """Tool name to its command on one set: ``deepmot`` and ``TrackEval``."""
    gt, trackers = root / "gt", root / "trackers"
    ours = [sys.executable, "-m", "deepmot", "eval", str(gt), str(trackers)]
    ours += ["--benchmark", benchmark, "--output-folder", str(root / "deepmot_out")]
    if workers is not None:
        ours += ["--workers", str(workers)]
    theirs = [sys.executable, "-c", TRACKEVAL, str(gt), str(trackers), benchmark]
    return {"deepmot": ours, "TrackEval": theirs}


def environments(tmp: Path, baseline: str | None, bytecode_cache: bool) -> dict[str, dict]:
    """Tool name to the environment its commands run in (``PYTHONPATH``: this ``src/``, or for
    ``deepmot@REV`` the baseline's, extracted from git)."""
    here = Path(__file__).resolve().parents[1]
    base = dict(os.environ)
    if bytecode_cache:
        base.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = {"deepmot": here / "src", "TrackEval": here / "src"}
    if baseline is not None:
        archive = subprocess.run(
            ["git", "-C", str(here), "archive", baseline, "src"], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp / "baseline", filter="data")
        paths = {f"deepmot@{baseline}": tmp / "baseline" / "src", **paths}
    envs = {}
    for name, src in paths.items():
        env = dict(base, PYTHONPATH=str(src))
        if bytecode_cache:
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache" / name.replace("@", "_"))
        envs[name] = env
    return envs


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, with the workers it waited for) of one command."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) as p:
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{err.decode()[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def check_numbers(benchmark: str, root: Path) -> list[str]:
    """Every field against TrackEval's in-process results; summary files byte for byte."""
    import contextlib

    import trackeval

    from deepmot.metrics import evaluate_trackers
    from deepmot.metrics.report import summary_text

    config = trackeval.Evaluator.get_default_eval_config()
    config.update(PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False)
    config.update(OUTPUT_DETAILED=False, PLOT_CURVES=False, TIME_PROGRESS=False)
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "BENCHMARK": benchmark,
            "SPLIT_TO_EVAL": "train",
            "PRINT_CONFIG": False,
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = [
            trackeval.metrics.HOTA(),
            trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
            trackeval.metrics.Identity({"PRINT_CONFIG": False}),
        ]
        out, _ = trackeval.Evaluator(config).evaluate([dataset], metrics)
    reference = out["MotChallenge2DBox"]["t"]
    ours = evaluate_trackers(root / "gt", root / "trackers", benchmark=benchmark)["t"]["pedestrian"]
    bad = []
    for row, res in reference.items():
        mine = ours.combined if row == "COMBINED_SEQ" else ours.sequences[row]
        for family, theirs in FAMILIES.items():
            metric = next(m for m in ours.metrics if m.name == family)
            integer = set(metric.integer_fields) | set(metric.integer_array_fields)
            for field, value in res["pedestrian"][theirs].items():
                a, b = np.asarray(mine[family][field], float), np.asarray(value, float)
                same = np.array_equal(a, b) if field in integer else np.allclose(a, b, 0, 1e-9)
                if not same:
                    bad.append(f"{benchmark} {row}/{field}: {a} vs {b}")
    written = root / "trackers" / f"{benchmark}-train" / "t" / "pedestrian_summary.txt"
    if written.is_file() and written.read_bytes() != summary_text(ours).encode():
        bad.append(f"{benchmark}: pedestrian_summary.txt differs from TrackEval's")
    return bad


def profile(benchmark: str, root: Path, env: dict) -> dict[str, float]:
    """Where deepmot's time goes on one set, in CPU seconds (what a busy machine disturbs
    least): the start-up of a process that imports what the command imports (Python, NumPy,
    deepmot), then, in this process, each step of the evaluation as the command runs it (one
    worker; ground truth read once per sequence)."""
    from deepmot.commands.eval import _write
    from deepmot.io.mot import read_gt, read_results, read_seqinfo
    from deepmot.io.trackeval_layout import find_trackers, resolve_gt
    from deepmot.metrics import CLEAR, HOTA, Identity, evaluate_trackers
    from deepmot.metrics.evaluate import preprocess
    from deepmot.metrics.report import detailed_text, summary_text

    imports = "import deepmot.cli, deepmot.commands.eval, deepmot.metrics.evaluate"
    startup = statistics.median(timed([sys.executable, "-c", imports], env)[1] for _ in range(5))
    steps = dict.fromkeys(("read files", "preprocess (distractors, IoU)"), 0.0)
    steps.update(dict.fromkeys(("CLEAR", "Identity", "HOTA", "write summary + detailed"), 0.0))
    gt_layout = resolve_gt(root / "gt", benchmark=benchmark)
    results = find_trackers(root / "trackers", gt_set=gt_layout.gt_set)["t"]
    t0 = time.process_time()
    evaluation = evaluate_trackers(root / "gt", root / "trackers", benchmark=benchmark)
    whole = time.process_time() - t0
    gts: dict[str, tuple] = {}
    for name, source in gt_layout.sequences.items():
        t = time.process_time()
        key = os.path.realpath(source.gt_path)
        if key not in gts:
            length = read_seqinfo(source.seq_dir / "seqinfo.ini").seq_length
            gts[key] = read_gt(source.gt_path), length
        (gt, length), res = gts[key], read_results(results / f"{name}.txt")
        steps["read files"] += time.process_time() - t
        t = time.process_time()
        data = preprocess(gt, res, benchmark=benchmark, num_frames=length, name=name)
        steps["preprocess (distractors, IoU)"] += time.process_time() - t
        for label, metric in (("CLEAR", CLEAR()), ("Identity", Identity()), ("HOTA", HOTA())):
            t = time.process_time()
            metric.eval_sequence(data)
            steps[label] += time.process_time() - t
    t = time.process_time()
    ours = evaluation["t"]["pedestrian"]
    _write(root / "profile_out" / "summary.txt", summary_text(ours))
    _write(root / "profile_out" / "detailed.csv", detailed_text(ours))
    steps["write summary + detailed"] = time.process_time() - t
    return {
        "start-up: Python, NumPy, deepmot imports (own process)": startup,
        **steps,
        "(whole evaluation in-process, one worker)": whole,
    }


def ratios(medians: dict[str, list[float]]) -> str:
    """Each tool's wall and CPU seconds, then TrackEval's over each deepmot's."""
    te_wall, te_cpu = medians["TrackEval"]
    parts = [f"{tool} {w:.3f} s wall, {c:.3f} s cpu" for tool, (w, c) in medians.items()]
    parts += [
        f"ratio {tool} {te_wall / w:.2f}x wall, {te_cpu / c:.2f}x cpu"
        for tool, (w, c) in medians.items()
        if tool != "TrackEval"
    ]
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, help="deepmot's --workers (default: its own)")
    parser.add_argument("--baseline", help="also time deepmot at this git revision (before/after)")
    parser.add_argument("--sets", nargs="+", choices=("two", "all"), default=("two", "all"))
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run with the environment's bytecode settings (see the module doc)",
    )
    args = parser.parse_args()
    if not LIFT.is_dir():
        print(f"shared data not found at {SHARED}", file=sys.stderr)
        return 2
    print(
        f"machine: {os.cpu_count()} processors, load average {os.getloadavg()[0]:.2f}; "
        f"bytecode cache: {'as the environment says' if args.no_bytecode_cache else 'on'}"
    )
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        envs = environments(Path(tmp), args.baseline, not args.no_bytecode_cache)
        sets = {k: v for k, v in prepare(Path(tmp)).items() if k in args.sets}
        for name, runs in sets.items():
            totals = {tool: [0.0, 0.0] for tool in envs}
            for benchmark, root in runs:
                cmds = commands(benchmark, root, args.workers)
                times: dict[str, list[tuple[float, float]]] = {tool: [] for tool in envs}
                for k in range(args.repeats + 1):  # round 0 warms up (page cache, bytecode)
                    for tool, env in envs.items():
                        measured = timed(cmds[tool.split("@")[0]], env)
                        if k:
                            times[tool].append(measured)
                medians = {
                    tool: [statistics.median(m[i] for m in t) for i in (0, 1)]
                    for tool, t in times.items()
                }
                for tool, (w, c) in medians.items():
                    totals[tool][0] += w
                    totals[tool][1] += c
                problems += check_numbers(benchmark, root)
                if len(runs) > 1:
                    n = len(list((root / "gt").glob("*-train/*")))
                    print(f"      {benchmark} ({n} result files): {ratios(medians)}")
            files = sum(len(list((r / "gt").glob("*-train/*"))) for _, r in runs)
            print(
                f"{name:>4} ({files} result files, {len(runs)} command(s); medians of "
                f"{args.repeats}; load average {os.getloadavg()[0]:.2f}): {ratios(totals)}"
            )
        for name, runs in sets.items():
            split: dict[str, float] = {}
            for benchmark, root in runs:
                for label, seconds in profile(benchmark, root, envs["deepmot"]).items():
                    split[label] = split.get(label, 0.0) + seconds
            print(f"profile of deepmot on '{name}' (CPU seconds, summed over its commands):")
            for label, seconds in split.items():
                print(f"  {label:<58} {seconds:7.3f}")
    print(f"all numbers equal TrackEval's, summary files identical: {not problems}")
    for p in problems[:20]:
        print("  mismatch:", p)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
