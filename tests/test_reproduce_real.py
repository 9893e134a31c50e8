"""``deepmot reproduce real``: the paired differences, their table, and tiny runs on the real
TUD-Campus frames (decoded from the shared video) whose rows equal tracking and scoring again
through written files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from test_reproduce import _rescored, _same_row

from deepmot.errors import DeepMOTError
from deepmot.reproduce import get_table
from deepmot.reproduce.registry import TableContext
from deepmot.reproduce.run import format_rows
from deepmot.reproduce.tables.real import paired_differences, synthetic_weights


def _row(name: str, mota: float, fp: int) -> dict:
    return {"row": name, "MOTA": mota, "MOTP": 80.0, "IDF1": 50.0, "MT": 10.0, "ML": 5.0,
            "FP": fp, "FN": 3, "IDS": 1}  # fmt: skip


def test_paired_differences_by_hand() -> None:
    per_seed = {
        "0": [_row("DeepMOT", 60.0, 10), _row("Vanilla", 58.0, 14)],
        "1": [_row("Vanilla", 61.0, 9), _row("DeepMOT", 60.0, 12)],  # order may differ
    }
    (diff,) = paired_differences(per_seed, (("DeepMOT", "Vanilla"), ("DeepMOT", "Kalman")))
    assert diff["row"] == "Δ DeepMOT − Vanilla"  # the pair with a missing row is left out
    assert diff["MOTA"] == pytest.approx(0.5) and diff["MOTA_std"] == pytest.approx(1.5)  # 2, -1
    assert diff["FP"] == pytest.approx(-0.5) and diff["FP_std"] == pytest.approx(3.5)  # -4, 3
    assert diff["MOTP"] == 0.0 and diff["MOTP_std"] == 0.0


def test_differences_print_as_a_table_of_their_own() -> None:
    columns = [{"name": "MOTA", "higher_is_better": True, "decimals": 2}]
    record = {
        "columns": columns,
        "seeds": [0, 1],
        "rows": [{"row": "A", "MOTA": 50.0, "MOTA_std": 1.0}, {"row": "B", "MOTA": 40.0}],
        "differences": [{"row": "Δ A − B", "MOTA": 70.0, "MOTA_std": 0.5}],
    }
    text = format_rows(record)
    rows, differences = text.split("Paired differences")
    assert "| A | **50.00 ± 1.00** |" in rows  # the best of the rows, the Δ apart
    assert "| Δ A − B | 70.00 ± 0.50 |" in differences
    assert "Paired differences" not in format_rows({**record, "differences": []})


TUD_VIDEO = SHARED_DATA / "video" / "TUD-Campus.mp4"
TUD_MOT = SHARED_DATA / "mot" / "TUD-Campus"


@pytest.fixture
def tud_frames(tmp_path: Path) -> Path:
    """A folder holding TUD-Campus as ``deepmot frames`` makes it, with its gt and det."""
    from deepmot.data.frames import extract_frames

    if not TUD_VIDEO.is_file() or not (TUD_MOT / "det" / "det.txt").is_file():
        pytest.skip(f"TUD-Campus video or its gt/det not found under {SHARED_DATA}")
    folder = tmp_path / "real" / "TUD-Campus"
    extract_frames(TUD_VIDEO, folder, progress=False)
    shutil.copytree(TUD_MOT / "gt", folder / "gt")
    (folder / "det").mkdir()
    shutil.copyfile(TUD_MOT / "det" / "det.txt", folder / "det" / "det.txt")
    return folder.parent


def _tiny(**changes) -> dict:
    spec = get_table("real")
    tiny = {"sequences": ["TUD-Campus"], "score_sequence": "TUD-Campus", "score_frames": 8,
            "vanilla_iterations": {"goturn": 1}, "finetune_iterations": {"goturn": 1},
            "sot": ["goturn"], "tracktor": False, "seeds": [0, 1]}  # fmt: skip
    return {**spec.scales["cpu"], **tiny, **changes}


def _validation(root: Path) -> list:
    from deepmot.data.sequence import Sequence
    from deepmot.train.compare import validation_clips

    (clip,) = validation_clips([Sequence.from_dir(root / "TUD-Campus")])
    return [clip.clip(range(1, 9))]


@pytest.mark.data
def test_real_table_sot_and_baseline_rows_are_the_evaluators(tmp_path: Path, tud_frames) -> None:
    """Two seeds of one GOTURN step each: the rows that train nothing equal tracking again
    (the synthetic-scene weights; each tracker's own defaults) and repeat in both seeds, the
    fine-tuned rows start from the seed's Vanilla weights, and the Δ rows are the seeds'
    differences."""
    from deepmot.trackers import create_tracker

    result = get_table("real").run(TableContext(tmp_path / "run", _tiny(), tud_frames, False))
    names = [r["row"] for r in result.rows]
    assert names == ["GOTURN synthetic", "GOTURN Vanilla", "GOTURN Smooth L1", "GOTURN DeepMOT",
                     "Constant velocity", "Kalman"]  # fmt: skip
    rows = {r["row"]: r for r in result.rows}
    val = _validation(tud_frames)
    again = {
        "GOTURN synthetic": create_tracker("goturn", weights=synthetic_weights("goturn")),
        "Constant velocity": create_tracker("constant_velocity"),
        "Kalman": create_tracker("kalman"),
    }
    for name, tracker in again.items():
        _same_row(rows[name], _rescored(name, tracker, val, tmp_path / name))
        assert rows[name]["MOTA_std"] == 0.0 and rows[name]["FN_std"] == 0.0  # both seeds
    for seed in (0, 1):
        sot = tmp_path / "run" / f"seed{seed}" / "sot"
        config = json.loads((sot / "goturn_deepmot" / "config.json").read_text())
        assert config["init_weights"] == str(sot / "goturn_vanilla" / "goturn.safetensors")
        vanilla = json.loads((sot / "goturn_vanilla" / "config.json").read_text())
        assert vanilla["init_weights"] == str(synthetic_weights("goturn"))
        assert vanilla["seed"] == seed and vanilla["loss"] == "vanilla"
    seeds = [{r["row"]: r for r in rows} for rows in result.per_seed.values()]
    diff = {d["row"]: d for d in result.differences}["Δ GOTURN DeepMOT − GOTURN Vanilla"]
    by_seed = [s["GOTURN DeepMOT"]["MOTP"] - s["GOTURN Vanilla"]["MOTP"] for s in seeds]
    assert diff["MOTP"] == pytest.approx(sum(by_seed) / 2)
    assert diff["MOTP_std"] == pytest.approx(abs(by_seed[0] - by_seed[1]) / 2)


@pytest.mark.data
@pytest.mark.slow
def test_real_table_tracktor_vanilla_row_is_the_default_tracker(tmp_path: Path, tud_frames) -> None:
    """Tracktor's nine rows at one step each; the Vanilla row (no ReID) is exactly
    ``create_tracker("tracktor")`` with its defaults, tracked again and scored from files."""
    from deepmot.trackers import create_tracker

    settings = _tiny(tracktor=True, sot=[], seeds=[0], iterations=1, head_iterations=1,
                     head_clip_length=3, reid_steps=2, score_frames=8)  # fmt: skip
    result = get_table("real").run(TableContext(tmp_path / "run", settings, tud_frames, False))
    names = [r["row"] for r in result.rows]
    assert names[:9] == [
        base + suffix
        for base in ("Vanilla", "Smooth L1", "DeepMOT")
        for suffix in ("", "+ReIDhead", "+ReIDext")
    ]
    assert names[9:] == ["Constant velocity", "Kalman"]
    tracker = create_tracker("tracktor", backbone_runtime="torch")
    again = _rescored("Vanilla", tracker, _validation(tud_frames), tmp_path / "again")
    _same_row({r["row"]: r for r in result.rows}["Vanilla"], again)


def test_real_table_needs_the_scored_sequence(tmp_path: Path) -> None:
    from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence

    scene = generate_scene(SceneConfig(frames=6, seed=3, name="SCENE-01"))
    write_sequence(scene, tmp_path / "data" / "SCENE-01", progress=False)
    settings = _tiny(sequences=None)
    with pytest.raises(DeepMOTError, match="no sequence TUD-Campus .*deepmot frames"):
        get_table("real").run(TableContext(tmp_path / "run", settings, tmp_path / "data", False))
