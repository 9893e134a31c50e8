"""DHN training and evaluation: loss against hand computation, WA/MA/SA on hand-made cases,
exact resume, the command line."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from deepmot.assign.dhn import DHNConfig
from deepmot.assign.dhn_metrics import discretize, evaluate, matrix_counts, one_minus_d, summarize
from deepmot.assign.hungarian import hungarian
from deepmot.data.dhn_dataset import DHNDataset, collate
from deepmot.train.dhn import (
    DHNTrainConfig,
    batch_wa,
    focal_weights,
    train_dhn,
    weighted_focal_loss,
)

TINY = DHNConfig(hidden=4, num_layers=1, fc=(4,), flatten="lines", extra_channels=True)


# ------------------------------------------------------------------ loss


def test_focal_weights_by_hand():
    target = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # n1 = 2, n0 = 4
    mask = torch.ones_like(target, dtype=torch.bool)
    w0, w1 = focal_weights(target, mask)
    assert float(w0) == pytest.approx(2 / 6)
    assert float(w1) == pytest.approx(4 / 6)
    mask[0, 1, 2] = False  # padding does not count: n1 = 2, n0 = 3
    w0, _ = focal_weights(target, mask)
    assert float(w0) == pytest.approx(2 / 5)


def test_weighted_focal_loss_by_hand():
    p = [[0.9, 0.2], [0.4, 0.3]]
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    logits = torch.logit(torch.tensor([p]))
    mask = torch.ones(1, 2, 2, dtype=torch.bool)
    w0 = w1 = 0.5  # n1 = n0 = 2
    by_hand = (
        w1 * (1 - 0.9) ** 2 * -math.log(0.9)
        + w0 * 0.2**2 * -math.log(0.8)
        + w0 * 0.4**2 * -math.log(0.6)
        + w1 * (1 - 0.3) ** 2 * -math.log(0.3)
    ) / 4
    loss = weighted_focal_loss(logits, target, mask, gamma=2.0)
    assert float(loss) == pytest.approx(by_hand, rel=1e-5)
    # unbalanced: one 1 among four entries, the last entry is padding
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    mask[0, 1, 1] = False
    w0, w1 = 1 / 3, 2 / 3
    by_hand = (
        w1 * 0.1**2 * -math.log(0.9) + w0 * 0.2**2 * -math.log(0.8) + w0 * 0.4**2 * -math.log(0.6)
    ) / 3
    loss = weighted_focal_loss(logits, target, mask, gamma=2.0)
    assert float(loss) == pytest.approx(by_hand, rel=1e-5)
    plain = weighted_focal_loss(logits, target, mask, gamma=0.0, weighting="none")
    bce = -(math.log(0.9) + math.log(0.8) + math.log(0.6)) / 3
    assert float(plain) == pytest.approx(bce, rel=1e-5)
    with pytest.raises(ValueError, match="weighting"):
        weighted_focal_loss(logits, target, mask, weighting="odd")


# ------------------------------------------------------------------ metrics


def test_discretize_row_and_column():
    a = np.array([[0.9, 0.6, 0.1], [0.7, 0.2, 0.4], [0.1, 0.3, 0.2]])
    assert discretize(a, "row").astype(int).tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert discretize(a, "col").astype(int).tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_wa_ma_sa_hand_made():
    a_star = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    soft = np.array([[0.9, 0.6, 0.1], [0.7, 0.2, 0.4], [0.1, 0.3, 0.2]])
    # row-wise: Ā = [[1,0,0],[1,0,0],[0,0,0]]: ones 2, correct ones 1; zeros 7, correct 6
    c = matrix_counts(soft, a_star, "row")
    w0, w1 = 2 / 9, 7 / 9
    assert c.wa_sum == pytest.approx((w1 * 1 + w0 * 6) / (w1 * 2 + w0 * 7))
    # counted over columns: col 0 has 2 (several), col 1 has 0 but A* has 1 (missing)
    assert (c.several, c.missing, c.lines, c.exact) == (1, 1, 3, 0)
    # column-wise: Ā = [[1,1,0],[0,0,0],[0,0,0]]: rows: row 0 several, row 1 missing
    c = matrix_counts(soft, a_star, "col")
    assert (c.several, c.missing, c.lines, c.exact) == (1, 1, 3, 0)
    assert c.wa_sum == pytest.approx((w1 * 1 + w0 * 6) / (w1 * 2 + w0 * 7))
    perfect = matrix_counts(a_star * 0.8, a_star, "row")
    assert (perfect.wa_sum, perfect.exact, perfect.missing, perfect.several) == (1.0, 1, 0, 0)
    # MA also counts an assignment where A* has none
    spurious = matrix_counts(np.array([[0.9, 0.0], [0.0, 0.0]]), np.zeros((2, 2)), "row")
    assert (spurious.missing, spurious.wa_sum) == (1, 3 / 4)  # no ones: plain accuracy


def test_evaluate_and_one_minus_d():
    rng = np.random.default_rng(0)
    ds = [rng.random((3, 4)).astype(np.float32) for _ in range(5)]
    items = [(torch.from_numpy(d), torch.from_numpy(hungarian(d).astype(np.float32))) for d in ds]
    d, a, mask = collate(items)
    perfect = summarize(evaluate(lambda d_, m_: a * 0.9, [(d, a, mask)])["all"])
    assert perfect["row"] == {"WA": 100.0, "MA": 0.0, "SA": 0.0, "exact": 100.0}
    base = one_minus_d(d, mask)
    assert torch.allclose(base[mask], (1 - d)[mask]) and (base[~mask] == 0).all()
    assert batch_wa(a, a, mask) == 1.0


# ------------------------------------------------------------------ training


def _tiny_data(path, n=24, seed=0):
    rng = np.random.default_rng(seed)
    ds, As = [], []
    for _ in range(n):
        d = rng.random(tuple(rng.integers(1, 6, 2))).astype(np.float32)
        ds.append(d)
        As.append(hungarian(d, 0.6))
    DHNDataset.from_matrices(ds, As).save(path / "train.safetensors")
    return path


def test_resume_is_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    data = _tiny_data(tmp_path)
    cfg = DHNTrainConfig(dhn=TINY, epochs=2, batch_size=4, checkpoint_every=2, seed=3)
    straight = train_dhn(data, tmp_path / "a", cfg, progress=False)
    assert straight["iterations"] == 12 and straight["finished"]
    part = DHNTrainConfig(**{**cfg.__dict__, "max_iters": 5})
    first = train_dhn(data, tmp_path / "b", part, progress=False)
    assert first["iterations"] == 5 and not first["finished"]
    resumed = train_dhn(data, tmp_path / "b", cfg, resume=True, progress=False)
    assert resumed["iterations"] == 12
    wa = load_file(str(tmp_path / "a" / "dhn_seq_gru.safetensors"))
    wb = load_file(str(tmp_path / "b" / "dhn_seq_gru.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    with (tmp_path / "a" / "log.csv").open() as f:
        rows_a = list(csv.reader(f))
    with (tmp_path / "b" / "log.csv").open() as f:
        rows_b = list(csv.reader(f))
    assert [r[:5] for r in rows_a] == [r[:5] for r in rows_b]  # same losses, no duplicates


def test_resume_refuses_other_settings(tmp_path):
    from deepmot.errors import DeepMOTError

    data = _tiny_data(tmp_path)
    cfg = DHNTrainConfig(dhn=TINY, epochs=1, batch_size=8)
    train_dhn(data, tmp_path / "run", cfg, progress=False)
    with pytest.raises(DeepMOTError, match="lr"):
        train_dhn(
            data, tmp_path / "run", DHNTrainConfig(dhn=TINY, lr=1.0), resume=True, progress=False
        )
    with pytest.raises(DeepMOTError, match="nothing to resume"):
        train_dhn(data, tmp_path / "none", cfg, resume=True, progress=False)


def test_training_reduces_the_loss(tmp_path):
    torch.set_num_threads(1)
    data = _tiny_data(tmp_path, n=32)
    cfg = DHNTrainConfig(dhn=TINY, epochs=15, batch_size=8, lr=1e-2, seed=0)
    train_dhn(data, tmp_path / "run", cfg, progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert np.mean(losses[-8:]) < np.mean(losses[:8])


def test_cli_train_and_eval(tmp_path, capsys):
    from deepmot.cli import main

    data = _tiny_data(tmp_path)
    DHNDataset.load(data / "train.safetensors").save(data / "test.safetensors")
    out = tmp_path / "run"
    argv = ["dhn", "train", str(data), "--out", str(out), "--hidden", "4", "--fc", "4"]
    assert main([*argv, "--epochs", "1", "--batch-size", "8", "--threads", "1"]) == 0
    assert (out / "dhn_seq_gru.safetensors").is_file()
    assert main(["dhn", "eval", str(out / "dhn_seq_gru.safetensors"), str(data)]) == 0
    text = capsys.readouterr().out
    assert "1 - D rule" in text and "exact" in text and "column-wise max" in text


def test_size_study_writes_wa_per_size_for_the_dhn_and_the_rule(tmp_path) -> None:
    import csv as csv_module

    from deepmot.assign.dhn import create_dhn
    from deepmot.assign.dhn_metrics import evaluate, one_minus_d, summarize
    from deepmot.data.dhn_dataset import DHNDataset, collate, uniform_matrices
    from deepmot.train.dhn_eval import size_study

    ds, targets = uniform_matrices([3, 6], per_size=4, seed=0)
    dataset = DHNDataset.from_matrices(ds, targets)
    real_ds, real_targets = uniform_matrices([4, 12], per_size=3, seed=1)
    real = DHNDataset.from_matrices(real_ds, real_targets)
    png = size_study({"DHN": create_dhn("seq_gru", pretrained=True)}, dataset, tmp_path, real=real)
    assert png.is_file() and png.stat().st_size > 0
    rows = list(csv_module.DictReader((tmp_path / "size_study.csv").open()))
    assert {(r["set"], r["method"], int(r["size"])) for r in rows} == {
        ("uniform", "DHN", 3), ("uniform", "DHN", 6), ("uniform", "1 - D rule", 3),
        ("uniform", "1 - D rule", 6), ("real", "DHN", 5), ("real", "DHN", 20),
        ("real", "1 - D rule", 5), ("real", "1 - D rule", 20),
    }  # fmt: skip
    assert all(0 <= float(r["WA_row"]) <= 100 for r in rows)
    # the rule's exact-match rate on the 12 x 12 matrices (bin <= 20), recomputed directly
    big = [real[i] for i in range(len(real)) if real.shapes[i][0] == 12]
    direct = summarize(evaluate(one_minus_d, [collate(big)])["all"])["row"]["exact"]
    rule = next(
        r for r in rows if (r["set"], r["method"], r["size"]) == ("real", "1 - D rule", "20")
    )
    assert float(rule["exact_row"]) == pytest.approx(direct, abs=1e-3)
    table = (tmp_path / "size_study.md").read_text()
    assert "| real | <=20 | 3 |" in table and "exact DHN" in table


def test_resume_with_uniform_mix_and_entry_capped_batches_is_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    data = _tiny_data(tmp_path)
    model = DHNConfig(arch="bipartite", hidden=4, num_layers=1, fc=(4,), rounds=1)
    cfg = DHNTrainConfig(
        name="bipartite_mp",
        dhn=model,
        epochs=2,
        batch_size=4,
        uniform=6,
        uniform_max_size=12,
        batch_entries=60,
        checkpoint_every=2,
        seed=1,
    )
    straight = train_dhn(data, tmp_path / "a", cfg, progress=False)
    part = DHNTrainConfig(**{**cfg.__dict__, "max_iters": 3})
    train_dhn(data, tmp_path / "b", part, progress=False)
    resumed = train_dhn(data, tmp_path / "b", cfg, resume=True, progress=False)
    assert resumed["iterations"] == straight["iterations"] and straight["finished"]
    wa = load_file(str(tmp_path / "a" / "dhn_bipartite_mp.safetensors"))
    wb = load_file(str(tmp_path / "b" / "dhn_bipartite_mp.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ablation_writes_one_row_per_variant_and_mode(tmp_path):
    import json

    from deepmot.train.dhn_eval import evaluate_split, load_model, run_ablation

    torch.set_num_threads(1)
    data = _tiny_data(tmp_path)
    DHNDataset.load(data / "train.safetensors").save(data / "test.safetensors")
    small = {"hidden": 4, "num_layers": 1, "fc": (4,), "rounds": 1}
    cfg = DHNTrainConfig(epochs=1, max_iters=2, batch_size=8)
    overrides = {"seq_gru": {**small, "flatten": "lines"}, "bipartite_mp": small}
    rows, table = run_ablation(data, tmp_path / "ab", list(overrides), overrides, cfg, False)
    assert [(r["discretisation"], r["network"]) for r in rows] == [
        (mode, net) for mode in ("row", "col") for net in ("seq_gru", "bipartite_mp", "1 - D rule")
    ]
    assert all(r["iterations"] == 2 for r in rows if r["network"] != "1 - D rule")
    saved = json.loads((tmp_path / "ab" / "ablation.json").read_text())
    assert saved["rows"] == rows and saved["configs"]["bipartite_mp"]["dhn"]["arch"] == "bipartite"
    # the table's figures are those of the trained weights on the test split
    model = load_model(tmp_path / "ab" / "bipartite_mp" / "dhn_bipartite_mp.safetensors")
    direct = evaluate_split(model, DHNDataset.load(data / "test.safetensors"))["dhn"]["col"]
    row = next(r for r in rows if (r["network"], r["discretisation"]) == ("bipartite_mp", "col"))
    assert row["exact"] == round(direct["exact"], 2) and row["WA"] == round(direct["WA"], 2)
    assert "bipartite_mp" in table and (tmp_path / "ab" / "ablation.md").is_file()
