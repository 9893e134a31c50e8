"""`deepmot tune` (Optuna over track management) and settings files (`track --config`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from deepmot.cli import main
from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence
from deepmot.errors import DeepMOTError
from deepmot.io.mot import read_results
from deepmot.metrics.evaluate import evaluate_data, preprocess
from deepmot.trackers import create_tracker, track_sequence
from deepmot.trackers.settings_file import read_tracker_settings, write_tracker_settings
from deepmot.tune.study import STUDY_NAME, tune_tracker


def _scenes() -> list:
    return [
        generate_scene(
            SceneConfig(frames=60, people=6, seed=s, name=f"S{s}", fp_rate=1.5, miss_rate=0.2)
        )
        for s in (3, 4)
    ]


def _sequences() -> list:
    return [scene.to_sequence() for scene in _scenes()]


def _hota_by_hand(tracker, sequences) -> float:
    """HOTA (percent) of ``tracker`` on the training frames, computed outside the tuner."""
    data = []
    for seq in sequences:
        clip = seq.clip(seq.split()[0])
        results = track_sequence(tracker, clip, progress=False)
        data.append(
            preprocess(clip.gt, results, benchmark="MOT17", num_frames=len(clip), name=seq.name)
        )
    return 100 * evaluate_data(data, ("hota",)).summary()["COMBINED"]["HOTA"]


def test_tuning_improves_or_keeps_the_objective(tmp_path: Path) -> None:
    sequences = _sequences()
    result = tune_tracker(
        sequences, "constant_velocity", tmp_path, trials=6, seed=0, progress=False
    )
    settings = read_tracker_settings(result.config_path)
    assert settings.tracker == "constant_velocity"
    best = _hota_by_hand(create_tracker("constant_velocity", **settings.settings), sequences)
    baseline = _hota_by_hand(create_tracker("constant_velocity"), sequences)
    assert best >= baseline
    # the file reproduces the best trial's own number, and trial 0 is the defaults
    assert best == pytest.approx(result.train["best"]["HOTA"], abs=1e-3)
    assert baseline == pytest.approx(result.train["baseline"]["HOTA"], abs=1e-3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["trials"] == 6 and set(summary["val"]) == {"baseline", "best"}


def test_fixed_settings_stay_fixed(tmp_path: Path) -> None:
    result = tune_tracker(
        _sequences(), "constant_velocity", tmp_path, trials=3, fixed={"max_invisible": 7},
        progress=False,
    )  # fmt: skip
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{tmp_path}/study.db")
    assert all("max_invisible" not in t.params for t in study.trials)
    assert read_tracker_settings(result.config_path).settings["max_invisible"] == 7


def test_a_resumed_study_continues(tmp_path: Path) -> None:
    sequences = _sequences()
    storage = tmp_path / "study.journal"
    first = tune_tracker(
        sequences, "constant_velocity", tmp_path, trials=3, storage=storage, progress=False
    )
    assert first.trials == 3 and first.ran == 3
    journal = optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))
    )
    before = optuna.load_study(study_name=STUDY_NAME, storage=journal).trials
    second = tune_tracker(
        sequences, "constant_velocity", tmp_path, trials=5, storage=storage, progress=False
    )
    assert second.trials == 5 and second.ran == 2
    after = optuna.load_study(study_name=STUDY_NAME, storage=journal).trials
    assert [t.number for t in after] == [0, 1, 2, 3, 4]
    for old, new in zip(before, after[:3], strict=True):  # finished trials untouched
        assert old.params == new.params and old.value == new.value
    old_params = [t.params for t in before]
    assert all(t.params not in old_params for t in after[3:])  # no repeat of finished ones
    again = tune_tracker(
        sequences, "constant_velocity", tmp_path, trials=5, storage=storage, progress=False
    )
    assert again.ran == 0 and again.trials == 5
    with pytest.raises(DeepMOTError, match="other settings.*objective"):
        tune_tracker(
            sequences, "constant_velocity", tmp_path, trials=6, storage=storage,
            objective="mota", progress=False,
        )  # fmt: skip


@pytest.mark.parametrize(
    "fixed, message",
    [({"max_invisble": 3}, "max_invisble"), ({"match_iou": 2.0}, "match_iou must be in")],
)
def test_bad_fixed_setting_is_an_error(tmp_path: Path, fixed: dict, message: str) -> None:
    with pytest.raises(DeepMOTError, match=message):
        tune_tracker(_sequences(), "kalman", tmp_path, trials=1, fixed=fixed, progress=False)
    assert not (tmp_path / "study.db").exists()  # refused before any study was made


def test_settings_file_with_unknown_key(tmp_path: Path, capsys) -> None:
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"tracker": "kalman", "max_invisble": 3}))
    with pytest.raises(DeepMOTError, match=r"best\.json: unknown key 'max_invisble'"):
        read_tracker_settings(path)
    root = tmp_path / "mot"
    write_sequence(_scenes()[0], root / "S3", render=False, progress=False)
    code = main(["track", str(root), "--config", str(path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key 'max_invisble'" in err and str(path) in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"max_invisible": 3', "not valid JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"tracker": "kalman", "max_invisible": "3"}', "'max_invisible' must be int"),
        ('{"tracker": "kalman", "match_iou": 2.0}', "match_iou must be in"),
        ('{"tracker": "kalman", "predict_invisible": 1}', "'predict_invisible' must be bool"),
        ('{"max_invisible": 3}', "names no tracker"),
    ],
)
def test_settings_file_mistakes(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(DeepMOTError, match=message):
        read_tracker_settings(path)


def test_settings_file_names_a_different_tracker(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_tracker_settings(path, "kalman", {"max_invisible": 3})
    with pytest.raises(DeepMOTError, match="for tracker 'kalman', not 'motion'"):
        read_tracker_settings(path, "motion")


def test_track_config_applies_the_settings(tmp_path: Path) -> None:
    root = tmp_path / "mot"
    scene = _scenes()[0]
    write_sequence(scene, root / "S3", render=False, progress=False)
    settings = {"max_invisible": 0, "birth_min_frames": 1, "refine_iou": None}
    path = tmp_path / "c.json"
    write_tracker_settings(path, "constant_velocity", settings)
    out = tmp_path / "results"
    args = ["track", str(root), "--config", str(path), "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    written = read_results(out / "S3.txt")
    expected = track_sequence(
        create_tracker("constant_velocity", **settings), scene.to_sequence(), progress=False
    )
    np.testing.assert_array_equal(written.ids, expected.ids)
    np.testing.assert_allclose(written.boxes_xywh, expected.boxes_xywh, atol=0.01)
    defaults = track_sequence(create_tracker("constant_velocity"), scene.to_sequence(), False)
    assert len(defaults) != len(expected)  # the settings changed what was tracked
