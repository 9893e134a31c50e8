"""Training on several processes (DDP over gloo on the CPU): the same steps as one process on
the same global batch, identical weights in every process, files from rank 0 only, resume on
any number of processes, and the clear errors of a bad launch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from deepmot.assign.dhn import DHNConfig
from deepmot.assign.hungarian import hungarian
from deepmot.data.dhn_dataset import DHNDataset
from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence
from deepmot.detection.config import DetectorConfig, DetectorTrainConfig
from deepmot.engine.distributed import Distributed, autocast, setup
from deepmot.errors import DeepMOTError
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig

TINY = DHNConfig(hidden=4, num_layers=1, fc=(4,), flatten="lines", extra_channels=True)
# 9 matrices in batches of 4: the epoch's last batch holds one, so one process has none
DHN_SETTINGS = {"dhn": TINY, "epochs": 2, "batch_size": 4, "checkpoint_every": 3, "seed": 3}
TRACKER_SETTINGS = {
    "matcher": "sinkhorn",
    "iterations": 4,
    "batch_size": 4,
    "checkpoint_every": 2,
    "sampling": "clips",
    "clip_length": 3,
    "lr": 1e-3,
    "diagnose_every": 2,
    "augment": AugmentationConfig(perturb=0.0, drop=0.2, false_tracks=0.5, swap=0.2),
}


# the image models: tiny frames, few steps (the detector and Tracktor's untrained one: a light
# backbone on images resized to 96 px)
TINY_DETECTOR = DetectorConfig.light(min_size=96, max_size=128)
DETECTOR_SETTINGS = {
    "detector": TINY_DETECTOR,
    "iterations": 3,
    "batch_size": 2,
    "lr": 2e-3,
    "checkpoint_every": 2,
}
IMAGE_TRACKER_SETTINGS = {
    "iterations": 2,
    "batch_size": 2,
    "clip_length": 2,
    "augment": AugmentationConfig(perturb=0.1, drop=0.2),
}


def _dhn_data(path: Path, n: int = 9) -> Path:
    rng = np.random.default_rng(0)
    ds = [rng.random(tuple(rng.integers(1, 6, 2))).astype(np.float32) for _ in range(n)]
    path.mkdir(parents=True, exist_ok=True)
    DHNDataset.from_matrices(ds, [hungarian(d, 0.6) for d in ds]).save(path / "train.safetensors")
    return path


def _sequences() -> list:
    return [
        generate_scene(SceneConfig(frames=30, people=4, seed=s, name=f"S{s}")).to_sequence()
        for s in (1, 2)
    ]


def _image_sequences() -> list:
    """Two small rendered scenes (frames, ground truth, detections)."""
    return [
        generate_scene(
            SceneConfig(frames=8, width=128, height=96, people=3, seed=s, name=f"S{s}")
        ).to_sequence()
        for s in (5, 6)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(job: dict, results: Path, tag: str) -> None:
    """Run ``job`` (DHN and/or tracker runs) in this process; record the final model of each
    run and every file this process wrote into a run folder."""
    from deepmot.detection.train import train_detector
    from deepmot.engine.run import TrainingRun
    from deepmot.train.dhn import DHNTrainConfig, train_dhn
    from deepmot.train.tracker import train_tracker

    folders = [str(Path(r["out"]).resolve()) for r in job["runs"]]
    writes: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event not in ("open", "os.rename", "os.remove", "os.mkdir", "os.chmod"):
            return
        path = args[1] if event == "os.rename" else args[0]  # a rename: where it lands
        if event == "open":
            mode, flags = args[1], args[2]
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if not writing:
                return
        if isinstance(path, (str, Path)):
            full = os.path.abspath(path)
            if any(full.startswith(f) for f in folders):
                writes.append(f"{event} {full}")

    sys.addaudithook(audit)
    models: dict[str, dict] = {}
    save = TrainingRun.save_checkpoint

    def record(self: TrainingRun, state: dict) -> None:  # every process, main or not
        models[str(self.out)] = {k: v.clone() for k, v in state["model"].items()}
        save(self, state)

    TrainingRun.save_checkpoint = record
    for r in job["runs"]:
        if r["kind"] == "dhn":
            config = DHNTrainConfig(**{**DHN_SETTINGS, **r.get("settings", {})})
            train_dhn(r["data"], r["out"], config, resume=r["resume"], progress=False)
        elif r["kind"] == "detector":
            config = DetectorTrainConfig(**{**DETECTOR_SETTINGS, **r.get("settings", {})})
            train_detector(_image_sequences(), r["out"], config, resume=r["resume"], progress=False)
        elif r["kind"] == "image_tracker":
            config = TrackerTrainConfig(**{**IMAGE_TRACKER_SETTINGS, **r["settings"]})
            train_tracker(_image_sequences(), r["out"], config, progress=False)
        else:
            config = TrackerTrainConfig(**{**TRACKER_SETTINGS, **r.get("settings", {})})
            train_tracker(_sequences(), r["out"], config, resume=r["resume"], progress=False)
    torch.save({"models": models, "writes": writes}, results / f"{tag}.pt")


def _worker(rank: int, world: int, port: int, job: dict, results: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    # one process group for all the job's runs (the trainers use one they find started)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _train(job, results, f"rank{rank}")
    finally:
        torch.distributed.destroy_process_group()


def _launch(job: dict, results: Path, world: int = 2) -> list[dict]:
    """Run ``job`` on ``world`` processes; the records of each rank."""
    results.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(world, _free_port(), job, results), nprocs=world)
    return [torch.load(results / f"rank{r}.pt", weights_only=False) for r in range(world)]


def _single(job: dict, results: Path) -> dict:
    results.mkdir(parents=True, exist_ok=True)
    _train(job, results, "single")
    return torch.load(results / "single.pt", weights_only=False)


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0.0:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-4, msg=key)


def _rows(path: Path) -> list[list[str]]:
    """A log's rows without the wall-time column."""
    return [line.split(",")[:-1] for line in path.read_text().splitlines()]


# ------------------------------------------------------------------ launch errors


def test_one_process_needs_no_process_group(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = setup("cpu")
    assert not dist.enabled and dist.rank == 0 and dist.shard([1, 2, 3]) == [1, 2, 3]
    assert dist.all_sum([1.5, 2.0]) == [1.5, 2.0]


def test_missing_rendezvous_variables_are_named(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DeepMOTError, match="MASTER_ADDR, MASTER_PORT are not set: launch with"):
        setup("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_nccl_without_cuda_is_refused() -> None:
    with pytest.raises(DeepMOTError, match="nccl backend needs CUDA"):
        setup("cpu", backend="nccl")
    with pytest.raises(DeepMOTError, match="CUDA is not available"):
        setup("cuda", backend="nccl")


def test_world_size_must_divide_the_batch() -> None:
    dist = Distributed(rank=1, world_size=2)
    dist.check_batch(4)
    with pytest.raises(DeepMOTError, match="batch_size 5 is the global batch and 2 processes"):
        dist.check_batch(5)
    assert dist.shard(list(range(5))) == [1, 3]


def test_mixed_precision_on_the_cpu_is_bf16_only() -> None:
    a, b = torch.rand(4, 8), torch.rand(8, 3)
    with autocast(torch.device("cpu"), None):
        assert (a @ b).dtype == torch.float32
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with pytest.raises(DeepMOTError, match="use --amp bf16 on the CPU"):
        autocast(torch.device("cpu"), "fp16")
    with pytest.raises(DeepMOTError, match="amp must be one of bf16, fp16"):
        autocast(torch.device("cpu"), "fp8")


def test_bf16_training_on_the_cpu_stays_near_float32(tmp_path: Path) -> None:
    """The motion tracker, 3 steps: bf16 autocast changes the numbers (it ran) but not the
    course of the loss (within 5% of float32's at every step)."""
    from deepmot.train.tracker import train_tracker

    config = TrackerTrainConfig(**{**TRACKER_SETTINGS, "iterations": 3, "batch_size": 2})
    for name, amp in (("fp32", None), ("bf16", "bf16")):
        train_tracker(_sequences(), tmp_path / name, config, progress=False, amp=amp)
    fp32, bf16 = (_rows(tmp_path / n / "log.csv")[1:] for n in ("fp32", "bf16"))
    losses = [(float(a[1]), float(b[1])) for a, b in zip(fp32, bf16, strict=True)]
    assert any(a != b for a, b in losses)
    for a, b in losses:
        assert b == pytest.approx(a, rel=0.05)


def test_cli_reports_a_bad_launch_in_one_line(tmp_path: Path) -> None:
    data = _dhn_data(tmp_path / "data")
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "PYTHONPATH": _pythonpath()}
    env.pop("MASTER_ADDR", None)
    env.pop("MASTER_PORT", None)
    done = subprocess.run(
        [sys.executable, "-m", "deepmot", "dhn", "train", str(data), "--out", str(tmp_path / "r")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "MASTER_ADDR, MASTER_PORT are not set" in done.stderr
    assert "Traceback" not in done.stderr


def _pythonpath() -> str:
    import deepmot

    src = str(Path(deepmot.__file__).resolve().parents[1])
    return os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])


# ------------------------------------------------------------------ two processes


def test_two_processes_take_the_single_process_steps(tmp_path: Path) -> None:
    """DHN and motion-tracker training on 2 gloo processes: both end with the same weights,
    those of one process on the same global batch (to float rounding); only rank 0 wrote."""
    data = _dhn_data(tmp_path / "data")
    job = {
        "runs": [
            {"kind": "dhn", "data": str(data), "out": str(tmp_path / "dhn2"), "resume": False},
            {"kind": "motion", "out": str(tmp_path / "motion2"), "resume": False},
            # most tracks dropped: steps where one process, or both, have none
            {
                "kind": "motion",
                "out": str(tmp_path / "sparse2"),
                "resume": False,
                "settings": {
                    "sampling": "pairs",
                    "batch_size": 2,
                    "iterations": 6,
                    "augment": AugmentationConfig(perturb=0.0, drop=0.9),
                },
            },
        ]
    }
    ranks = _launch(job, tmp_path / "results")
    single_job = {
        "runs": [{**r, "out": r["out"][:-1] + "1"} for r in job["runs"]],  # name2 -> name1
    }
    single = _single(single_job, tmp_path / "results")
    for name in ("dhn", "motion", "sparse"):
        two = [rank["models"][str(tmp_path / f"{name}2")] for rank in ranks]
        _assert_same(two[0], two[1])  # DDP keeps the processes identical, bit for bit
        _assert_same(two[0], single["models"][str(tmp_path / f"{name}1")], atol=1e-5)
        # the logs hold the global batch's figures: the single process's, to rounding
        for row2, row1 in zip(
            _rows(tmp_path / f"{name}2" / "log.csv"),
            _rows(tmp_path / f"{name}1" / "log.csv"),
            strict=True,
        ):
            for a, b in zip(row2, row1, strict=True):
                try:
                    assert float(a) == pytest.approx(float(b), rel=1e-3, abs=1e-5, nan_ok=True)
                except ValueError:
                    assert a == b
    assert ranks[1]["writes"] == []
    written = {Path(w.split()[1]).name for w in ranks[0]["writes"]}
    assert {"config.json", "checkpoint.pt", "log.csv", "motion.safetensors"} <= written
    assert sorted(p.name for p in (tmp_path / "dhn2").iterdir()) == sorted(
        p.name for p in (tmp_path / "dhn1").iterdir()
    )


@pytest.mark.slow
def test_two_processes_train_the_image_models_as_one(tmp_path: Path) -> None:
    """The detector, GOTURN, SiamRPN (single-object loss) and Tracktor on 2 gloo processes:
    the same weights in both, those of one process on the same global batch (to float
    rounding); only rank 0 wrote; a detector run resumed on 1 process continues as the
    uninterrupted one. With trained BatchNorm on the CPU (no SyncBatchNorm), the processes
    still end identical."""
    runs = {
        "detector": ("detector", {"norm": "frozen"}),
        "detector_bn": ("detector", {"norm": "batch"}),
        "goturn": ("image_tracker", {"tracker": "goturn", "matcher": "sinkhorn"}),
        "siamrpn": ("image_tracker", {"tracker": "siamrpn", "loss": "vanilla"}),
        "tracktor": (
            "image_tracker",
            {
                "tracker": "tracktor",
                "matcher": "sinkhorn",
                "det_file": None,
                "model": {"detector": "untrained", "camera_motion": False},
            },
        ),
    }

    def job(suffix: str, names: list[str]) -> dict:
        return {
            "runs": [
                {
                    "kind": runs[name][0],
                    "out": str(tmp_path / f"{name}{suffix}"),
                    "resume": False,
                    "settings": runs[name][1],
                }
                for name in names
            ]
        }

    # and a detector run stopped after 2 of its 3 steps on 2 processes, resumed on 1
    part = {"kind": "detector", "out": str(tmp_path / "resumed"), "settings": {"norm": "frozen"}}
    first = {**part, "resume": False, "settings": {"norm": "frozen", "iterations": 2}}
    ranks = _launch({"runs": [*job("2", list(runs))["runs"], first]}, tmp_path / "results")
    exact = ["detector", "goturn", "siamrpn", "tracktor"]
    single = _single(
        {"runs": [*job("1", exact)["runs"], {**part, "resume": True}]}, tmp_path / "results"
    )
    _assert_same(
        single["models"][str(tmp_path / "resumed")],
        ranks[0]["models"][str(tmp_path / "detector2")],
        atol=1e-5,
    )
    for name in runs:
        two = [rank["models"][str(tmp_path / f"{name}2")] for rank in ranks]
        _assert_same(two[0], two[1])  # parameters and BatchNorm's statistics alike
        if name in exact:
            _assert_same(two[0], single["models"][str(tmp_path / f"{name}1")], atol=1e-5)
            start, trained = _initial(name)
            assert not torch.equal(two[0][trained], start[trained])  # the weights moved
    assert ranks[1]["writes"] == []
    written = {Path(w.split()[1]).name for w in ranks[0]["writes"]}
    assert {"detector.safetensors", "goturn.safetensors", "siamrpn.safetensors"} <= written
    assert "tracktor.safetensors" in written
    logs = [_rows(tmp_path / f"detector{n}" / "log.csv")[1:] for n in (2, 1)]
    for row2, row1 in zip(*logs, strict=True):  # the whole batch's losses, as one process's
        for a, b in zip(row2[1:], row1[1:], strict=True):
            assert float(a) == pytest.approx(float(b), rel=1e-4)


def _initial(name: str) -> tuple[dict, str]:
    """The model's initial state as the trainer builds it (seed 0), and the name of its
    first trained parameter."""
    from deepmot.detection.model import build_detector
    from deepmot.trackers.registry import get_trainable

    torch.manual_seed(0)
    if name == "detector":
        model = build_detector(TINY_DETECTOR)
    else:
        trainable = get_trainable(name)
        settings = {"tracktor": {"detector": "untrained", "camera_motion": False}}.get(name, {})
        model = trainable.build(trainable.config_from_dict(settings))
    trained = next(n for n, p in model.named_parameters() if p.requires_grad)
    return model.state_dict(), trained


@pytest.mark.slow
def test_a_resumed_two_process_run_continues_as_an_uninterrupted_one(tmp_path: Path) -> None:
    data = _dhn_data(tmp_path / "data")

    def runs(suffix: str, resume: bool, dhn_iters: int | None, iterations: int) -> dict:
        return {
            "runs": [
                {
                    "kind": "dhn",
                    "data": str(data),
                    "out": str(tmp_path / f"dhn{suffix}"),
                    "resume": resume,
                    "settings": {"max_iters": dhn_iters},
                },
                {
                    "kind": "motion",
                    "out": str(tmp_path / f"motion{suffix}"),
                    "resume": resume,
                    "settings": {"iterations": iterations},
                },
            ]
        }

    straight = _launch(runs("_straight", False, None, 4), tmp_path / "a")
    _launch(runs("_resumed", False, 3, 2), tmp_path / "b")
    resumed = _launch(runs("_resumed", True, None, 4), tmp_path / "c")
    # a 2-process run resumed on 1 process (and the other way round: any world size)
    _single(runs("_one", False, 3, 2), tmp_path / "d")
    on_two = _launch(runs("_one", True, None, 4), tmp_path / "e")
    for name in ("dhn", "motion"):
        a = straight[0]["models"][str(tmp_path / f"{name}_straight")]
        _assert_same(a, resumed[0]["models"][str(tmp_path / f"{name}_resumed")])
        _assert_same(a, resumed[1]["models"][str(tmp_path / f"{name}_resumed")])
        assert _rows(tmp_path / f"{name}_straight" / "log.csv") == _rows(
            tmp_path / f"{name}_resumed" / "log.csv"
        )
        _assert_same(a, on_two[0]["models"][str(tmp_path / f"{name}_one")], atol=1e-5)


@pytest.mark.slow
def test_torchrun_runs_the_commands(tmp_path: Path) -> None:
    """``torchrun --nproc-per-node 2 -m deepmot ...`` for ``dhn train``, ``train`` and
    ``detector train``."""
    data = _dhn_data(tmp_path / "data")
    scenes = tmp_path / "scenes"
    for s in (1, 2):
        scene = generate_scene(SceneConfig(frames=30, people=4, seed=s, name=f"S{s}"))
        write_sequence(scene, scenes / f"S{s}", render=False)
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--master-port", str(_free_port()), "-m", "deepmot"]
    commands = [
        ["dhn", "train", str(data), "--out", str(tmp_path / "dhn"), "--max-iters", "3"],
        ["dhn", "train", str(data), "--out", str(tmp_path / "dhn"), "--max-iters", "5"],
        ["train", str(scenes), "--out", str(tmp_path / "motion"), "--iterations", "2"],
    ]
    commands[0] += ["--batch-size", "4", "--hidden", "4", "--layers", "1", "--no-progress"]
    commands[1] += ["--resume", "--no-progress"]
    commands[2] += ["--matcher", "sinkhorn", "--batch-size", "2", "--no-progress"]
    detector = ["detector", "train", "--sequences", "1", "--frames", "4", "--min-size", "96"]
    detector += ["--iterations", "2", "--out", str(tmp_path / "detector"), "--no-progress"]
    commands.append([*detector, "--workers", "1", "--norm", "frozen"])
    for command in commands:
        done = subprocess.run(
            torchrun + command, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "dhn" / "dhn_seq_gru.json").read_text())["iterations"] == 5
    assert (tmp_path / "motion" / "motion.safetensors").is_file()
    assert json.loads((tmp_path / "detector" / "detector.json").read_text())["iterations"] == 2
    done = subprocess.run(
        torchrun + ["train", str(scenes), "--out", str(tmp_path / "odd"), "--batch-size", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "choose a multiple of 2" in done.stderr
