"""Tune a tracker's track management with Optuna: search on the training frames, report on the
validation frames.

The paper fixes its track management by hand (supp. A.2: K = 60, refinement above IoU 0.6,
births after 3 frames); :func:`tune_tracker` searches those settings (:data:`SEARCH_SPACE`)
for one objective (HOTA, MOTA or IDF1) on the first half of each sequence (the paper's training
split) and scores the defaults and the best settings on its last quarter (the validation split,
never seen by the search). The first trial is the defaults, so the best is never worse than
them on the training frames. The sequences are read and cut once; every trial only tracks and
scores them. A trainable tracker's model is built once for all trials (:func:`trial_trackers`),
and what its predictor computes from the frames alone (Tracktor's backbone features, ECC warps
and re-scored detections) is kept in a :class:`~deepmot.trackers.frame_cache.FrameCache`
bounded in memory (``cache_mib``), so a trial recomputes only what its settings change. The
study lives in an Optuna storage file (SQLite ``*.db`` or a journal file), so an interrupted
or finished study continues where it stopped.

Writes into the run folder: ``best_config.json`` (a tracker settings file for ``deepmot track
--config``), ``summary.json`` (the settings of the study, baseline and best, their metrics on
both splits, the trials' wall time and the cache's hits) and ``table.md``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from collections.abc import Sequence as SequenceOf
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from deepmot.data.sequence import Sequence
from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_text
from deepmot.metrics.evaluate import detect_benchmark, evaluate_data, preprocess
from deepmot.trackers import Tracker, create_tracker, track_sequence
from deepmot.trackers.frame_cache import FrameCache
from deepmot.trackers.management import ManagedTracker, TrackManagementConfig
from deepmot.trackers.registry import TrackerEntry, tracker_entry
from deepmot.trackers.settings_file import setting_names, write_tracker_settings

__all__ = [
    "DEFAULT_CACHE_MIB",
    "OBJECTIVES",
    "SEARCH_SPACE",
    "Param",
    "TuneResult",
    "score_tracker",
    "trial_trackers",
    "tune_tracker",
]

log = logging.getLogger(__name__)

#: objective name -> the evaluator's summary field (all maximised)
OBJECTIVES = {"hota": "HOTA", "mota": "MOTA", "idf1": "IDF1"}
#: the metrics reported for baseline and best
REPORTED = ("HOTA", "MOTA", "IDF1", "IDSW", "CLR_FP", "CLR_FN")
STUDY_NAME = "deepmot-tune"
#: The frame cache's default bound: about 6,600 frames of the shipped light Tracktor's
#: features (0.31 MiB a frame of 640x480, resized to 320x426), or 29 of a ResNet-50-FPN's
#: (70.8 MiB a frame, resized to 800x1066); both measured.
DEFAULT_CACHE_MIB = 2048


@dataclass(frozen=True)
class Param:
    """One searched setting: ``kind`` ``"float"`` or ``"int"`` in ``[low, high]``, or
    ``"bool"``."""

    kind: str
    low: float = 0.0
    high: float = 1.0

    def suggest(self, trial: Any, name: str) -> Any:
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        if self.kind == "bool":
            return trial.suggest_categorical(name, [True, False])
        raise ValueError(f"unknown parameter kind {self.kind!r}")


#: The searched fields of :class:`TrackManagementConfig`, around the paper's and Tracktor's
#: defaults. ``refine_iou`` 1.0 never refines (an IoU is never above 1), the default None's
#: equal. Left out: ``min_score`` (MOT17's cleaned public detections carry no score),
#: ``min_track_score`` and ``revive_similarity`` (only for predictors that score or embed);
#: pin them with ``fixed``.
SEARCH_SPACE: dict[str, Param] = {
    "max_invisible": Param("int", 0, 120),
    "match_iou": Param("float", 0.1, 0.7),
    "refine_iou": Param("float", 0.3, 1.0),
    "refine_weight": Param("float", 0.0, 1.0),
    "detection_nms": Param("float", 0.1, 0.8),
    "track_nms": Param("float", 0.3, 0.9),
    "revive_iou": Param("float", 0.1, 0.7),
    "birth_min_frames": Param("int", 1, 5),
    "birth_iou": Param("float", 0.1, 0.7),
    "predict_invisible": Param("bool"),
}


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune_tracker` found.

    Attributes:
        baseline, best: the full settings (management fields and fixed ones) of the defaults
            and of the best trial.
        best_trial: the best trial's number (0: the defaults stayed best).
        train, val: ``"baseline"``/``"best"`` -> metric -> value (percent for HOTA, MOTA, IDF1;
            counts for IDSW, FP, FN) on the training and validation frames.
        trials: finished trials in the study; ran: trials this call ran.
        config_path: the written ``best_config.json``.
        seconds: the wall time of the trials this call ran.
        cache: the frame cache's :meth:`~deepmot.trackers.frame_cache.FrameCache.stats`
            (None: no cache).
    """

    baseline: dict[str, Any]
    best: dict[str, Any]
    best_trial: int
    train: dict[str, dict[str, float]]
    val: dict[str, dict[str, float]]
    trials: int
    ran: int
    config_path: Path
    seconds: float = 0.0
    cache: dict[str, float] | None = None


def score_tracker(tracker: Any, sequences: SequenceOf[Sequence]) -> dict[str, float]:
    """Track ``sequences`` and score them together: :data:`REPORTED` (HOTA, MOTA, IDF1 in
    percent, HOTA averaged over its IoU thresholds; IDSW, FP, FN counts)."""
    data = []
    for seq in sequences:
        results = track_sequence(tracker, seq, progress=False)
        data.append(
            preprocess(
                seq.gt,
                results,
                benchmark=detect_benchmark(seq.name),
                num_frames=len(seq),
                name=seq.name,
            )
        )
    combined = evaluate_data(data, ("hota", "clear", "identity")).summary()["COMBINED"]
    return {
        k: round(100 * combined[k], 3) if k in OBJECTIVES.values() else int(combined[k])
        for k in REPORTED
    }


def trial_trackers(
    tracker: str,
    weights: Path | None,
    fixed: Mapping[str, Any],
    cache: FrameCache | None = None,
) -> Callable[[Mapping[str, Any]], Tracker]:
    """``settings -> tracker`` for the trials: ``tracker`` with ``fixed`` and the trial's
    management ``settings``.

    A trainable tracker's model is built (or loaded from ``weights``) once and shared by every
    tracker made, each with a fresh predictor, whose ``use_frame_cache`` hook gets ``cache``
    (Tracktor reads and fills it; the others ignore it). Other trackers are made by
    :func:`create_tracker` each time.
    """
    entry = tracker_entry(tracker)
    if entry.trainable is None:
        return lambda settings: create_tracker(tracker, weights=weights, **fixed, **settings)
    manage = {f.name for f in fields(TrackManagementConfig)}
    model_settings = {k: v for k, v in fixed.items() if k not in manage}
    trainable = entry.trainable
    if weights is not None:
        module = trainable.load(weights)
    else:
        module = trainable.build(entry.config(**model_settings))
    module.eval()

    def make(settings: Mapping[str, Any]) -> Tracker:
        predictor = trainable.predictor(module)
        if cache is not None:
            predictor.use_frame_cache(cache)
        chosen = {k: v for k, v in {**fixed, **settings}.items() if k in manage}
        return ManagedTracker(predictor, replace(entry.management, **chosen))

    return make


def _storage(path: Path) -> Any:
    """An Optuna storage in ``path``: SQLite for ``.db``/``.sqlite``, else a journal file."""
    import optuna

    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path)))


def _check_fixed(tracker: str, fixed: Mapping[str, Any], weights: Path | None) -> None:
    known = setting_names(tracker)
    unknown = sorted(set(fixed) - set(known))
    if unknown:
        raise DeepMOTError(
            f"fixed settings {unknown} are not settings of tracker {tracker!r}; valid: "
            f"{', '.join(sorted(known))}"
        )
    manage = {f.name for f in fields(TrackManagementConfig)}
    if weights is not None and set(fixed) - manage:
        raise DeepMOTError(
            f"trained weights fix the model's config; cannot fix {sorted(set(fixed) - manage)}"
        )
    try:  # values in range, weights that load: fail before any trial
        create_tracker(tracker, weights=weights, pretrained=False, **fixed)
    except (ValueError, TypeError, KeyError) as error:
        what = f"weights {weights} / " if weights is not None else ""
        raise DeepMOTError(
            f"tracker {tracker!r} with {what}fixed settings {fixed}: {error}"
        ) from None


def _open_study(
    path: Path, settings: dict[str, Any], baseline: dict[str, Any], seed: int
) -> tuple[Any, int]:
    """Create or resume the study stored in ``path``; returns it and its finished trials.

    A new study records ``settings`` and gets the defaults (``baseline``) as its first trial;
    a stored one must have been made with the same settings. The sampler is seeded with
    ``seed`` plus the trials the study holds, so a resumed study does not replay its draws.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=_storage(path), study_name=STUDY_NAME, direction="maximize", load_if_exists=True
    )
    settings = json.loads(json.dumps(settings))  # as stored: tuples become lists
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
    elif stored != settings:
        differ = sorted(k for k in settings if settings[k] != stored.get(k))
        raise DeepMOTError(
            f"{path}: holds a study with other settings ({', '.join(differ)}); resume with the "
            "same ones or choose another --storage/--out"
        )
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if not study.trials:
        study.enqueue_trial(baseline, user_attrs={"baseline": True})
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study, done


def tune_tracker(
    sequences: SequenceOf[Sequence],
    tracker: str,
    out: str | Path,
    *,
    trials: int,
    objective: str = "hota",
    weights: str | Path | None = None,
    fixed: Mapping[str, Any] | None = None,
    seed: int = 0,
    storage: str | Path | None = None,
    space: Mapping[str, Param] = SEARCH_SPACE,
    progress: bool = True,
    cache_mib: float = DEFAULT_CACHE_MIB,
) -> TuneResult:
    """Search ``tracker``'s track management for ``objective`` on the training frames.

    Args:
        sequences: sequences with ground truth and detections (read once, cut once).
        tracker: a registered tracker name.
        out: the run folder (made).
        trials: the number of finished trials the study should hold; a resumed study runs
            only the missing ones (give more to search further).
        objective: ``"hota"``, ``"mota"`` or ``"idf1"`` (maximised).
        weights: trained weights of a learned tracker.
        fixed: settings pinned for every trial (taken out of the search).
        seed: the sampler's seed (a resumed study reseeds with seed + finished trials, so it
            does not replay the draws it has made).
        storage: the Optuna storage file; default ``out/study.db``.
        space: the searched settings.
        progress: a progress bar over the trials.
        cache_mib: the bound of the frame cache shared by the trials, in MiB (0: none).

    Raises:
        DeepMOTError: an unknown tracker, objective or fixed setting; a storage holding a
            study with other settings.
        ValueError: ``trials`` < 1 or no sequences.
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not sequences:
        raise ValueError("no sequences to tune on")
    if cache_mib < 0:
        raise ValueError(f"cache_mib must be >= 0, got {cache_mib}")
    entry = _managed_entry(tracker, objective)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = Path(weights) if weights is not None else None
    fixed = dict(fixed or {})
    _check_fixed(tracker, fixed, weights)
    searched = {k: p for k, p in space.items() if k not in fixed}
    defaults = asdict(entry.management)
    baseline_params = {k: defaults[k] for k in searched}
    if "refine_iou" in baseline_params and baseline_params["refine_iou"] is None:
        baseline_params["refine_iou"] = 1.0  # never refine

    train = [s.clip(s.split()[0]) for s in sequences]
    val = [s.clip(s.split()[1]) for s in sequences]
    settings = {
        "tracker": tracker,
        "weights": str(weights) if weights is not None else None,
        "objective": objective,
        "fixed": fixed,
        "searched": sorted(searched),
        "sequences": [s.name for s in sequences],
        "seed": seed,
    }

    storage_path = Path(storage) if storage is not None else out / "study.db"
    study, done = _open_study(storage_path, settings, baseline_params, seed)
    cache = FrameCache(int(cache_mib * 2**20)) if cache_mib > 0 else None
    make = trial_trackers(tracker, weights, fixed, cache)
    todo = max(0, trials - done)
    seconds = _run_trials(
        study, todo, trials, done, searched, make, train, objective, storage_path, progress
    )
    result = _score_best(
        study, entry, make, train, val, fixed, baseline_params, todo, seconds, cache, out
    )
    summary = {
        "settings": settings,
        "storage": str(storage_path),
        "trials": result.trials,
        "best_trial": result.best_trial,
        "baseline": result.baseline,
        "best": result.best,
        "train": result.train,
        "val": result.val,
        "ran": result.ran,
        "seconds": round(result.seconds, 1),
        "cache": result.cache,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "table.md", format_tune_table(result, objective) + "\n")
    return result


def _managed_entry(tracker: str, objective: str) -> TrackerEntry:
    """The registration of ``tracker``, a tracker in the shared management.

    Raises:
        DeepMOTError: an unknown objective or tracker, or a standalone tracker.
    """
    if objective not in OBJECTIVES:
        raise DeepMOTError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    try:
        entry = tracker_entry(tracker)
    except ValueError as error:
        raise DeepMOTError(str(error)) from None
    if entry.standalone is not None:
        raise DeepMOTError(
            f"tracker {tracker!r} has its own track management; tuning searches the shared "
            "management's settings (choose a managed tracker)"
        )
    return entry


def _run_trials(
    study: Any,
    todo: int,
    trials: int,
    done: int,
    searched: Mapping[str, Param],
    make: Callable[[Mapping[str, Any]], Tracker],
    train: list[Sequence],
    objective: str,
    storage_path: Path,
    progress: bool,
) -> float:
    """Run the study's ``todo`` missing trials (each tracks and scores ``train``) under a
    progress bar; their seconds (0 with none to run).

    Raises:
        KeyboardInterrupt: a trial was interrupted (the finished ones stay in the storage).
    """
    import optuna

    interrupted: list[int] = []

    def run_trial(trial: optuna.Trial) -> float:
        params = {name: param.suggest(trial, name) for name, param in searched.items()}
        try:
            scores = score_tracker(make(params), train)
        except KeyboardInterrupt:
            # Optuna would log the interrupted trial with its traceback: end the study quietly
            # (the trial is kept as pruned) and say so once, below
            interrupted.append(trial.number)
            trial.study.stop()
            raise optuna.TrialPruned() from None
        for key, value in scores.items():
            trial.set_user_attr(key, value)
        return scores[OBJECTIVES[objective]]

    if todo == 0:
        log.info("the study holds %d finished trials already; nothing to run", done)
        return 0.0
    from tqdm.auto import tqdm

    start = time.perf_counter()
    bar = tqdm(total=trials, initial=done, desc="trials", disable=not progress)

    def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        bar.set_postfix(best=f"{study.best_value:.2f}")

    with bar:
        study.optimize(run_trial, n_trials=todo, callbacks=[advance])
    if interrupted:
        finished = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        raise KeyboardInterrupt(
            f"trial {interrupted[0]} stopped; {finished} finished trial(s) kept in "
            f"{storage_path}, the same command continues the study"
        )
    seconds = time.perf_counter() - start
    log.info("%d trials in %.1f s (%.2f trials/min)", todo, seconds, 60 * todo / seconds)
    return seconds


def _score_best(
    study: Any,
    entry: TrackerEntry,
    make: Callable[[Mapping[str, Any]], Tracker],
    train: list[Sequence],
    val: list[Sequence],
    fixed: dict[str, Any],
    baseline_params: dict[str, Any],
    ran: int,
    seconds: float,
    cache: FrameCache | None,
    out: Path,
) -> TuneResult:
    """The defaults and the best trial on the training frames (from the study) and on the
    validation frames (tracked now); the best settings written as ``out/best_config.json``."""
    import optuna

    best = study.best_trial
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    baseline_trial = next((t for t in completed if t.user_attrs.get("baseline")), None)
    full_best = {**fixed, **best.params}
    result_train = {
        "baseline": (
            {k: baseline_trial.user_attrs[k] for k in REPORTED}
            if baseline_trial is not None
            else score_tracker(make(baseline_params), train)
        ),
        "best": {k: best.user_attrs[k] for k in REPORTED},
    }
    result_val = {
        name: score_tracker(make(chosen), val)
        for name, chosen in (("baseline", baseline_params), ("best", best.params))
    }
    defaults = asdict(entry.management)
    best_management = {k: v for k, v in full_best.items() if k in defaults}
    management = asdict(replace(entry.management, **best_management))
    model = {k: v for k, v in fixed.items() if k not in defaults}
    config_path = out / "best_config.json"
    write_tracker_settings(config_path, entry.name, {**management, **model})
    return TuneResult(
        baseline={**fixed, **baseline_params},
        best=full_best,
        best_trial=best.number,
        train=result_train,
        val=result_val,
        trials=len(completed),
        ran=ran,
        config_path=config_path,
        seconds=seconds,
        cache=cache.stats() if cache is not None else None,
    )


def format_tune_table(result: TuneResult, objective: str) -> str:
    """Baseline vs best as markdown: the objective on the training frames, the reported
    metrics on the validation frames, then the settings that changed."""
    key = OBJECTIVES[objective]
    names = ["HOTA", "MOTA", "IDF1", "IDSW", "CLR_FP", "CLR_FN"]
    header = ["settings", f"train {key}", *(f"val {n.removeprefix('CLR_')}" for n in names)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row, label in (
        ("baseline", "defaults (trial 0)"),
        ("best", f"best (trial {result.best_trial})"),
    ):
        cells = [label, f"{result.train[row][key]:.2f}"]
        for n in names:
            value = result.val[row][n]
            cells.append(f"{value:.2f}" if n in OBJECTIVES.values() else str(int(value)))
        lines.append("| " + " | ".join(cells) + " |")
    changed = [
        f"{k} {_fmt(result.baseline[k])} → {_fmt(v)}"
        for k, v in result.best.items()
        if result.baseline.get(k) != v
    ]
    lines += [
        "",
        f"{result.trials} trials; training frames: first 50% of each sequence, validation: last "
        "25% (paper's split). Changed: " + ("; ".join(changed) or "nothing (defaults best)"),
    ]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
