"""Evaluating DHNs: test-split report, WA-vs-size study (Fig. 8), ablation table (Table 5).

Every report puts the DHN next to the no-learning rule Â = 1 − D on the same matrices
(NOTES.md: that rule alone scores WA ≈ 95%, so exact match is the telling figure).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from deepmot.assign.dhn import DHN, DHNConfig, build_dhn, create_dhn, load_dhn
from deepmot.assign.dhn_metrics import MODES, evaluate, one_minus_d, summarize
from deepmot.data.dhn_dataset import DHNDataset, collate, size_grouped_batches
from deepmot.engine.checkpoint import load_checkpoint
from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_path, atomic_write_text

__all__ = [
    "batches_of",
    "evaluate_split",
    "format_report",
    "format_size_table",
    "load_model",
    "run_ablation",
    "size_study",
]

log = logging.getLogger(__name__)

PAPER_TABLE5 = {
    "row": {
        "seq_gru": (92.88, 4.79, 3.39),
        "seq_lstm": (83.66, 13.79, 5.98),
        "paral_gru": (89.56, 8.21, 4.99),
        "paral_lstm": (88.93, 8.67, 5.38),
        "conv1d": (56.43, 35.06, 2.78),
    },
    "col": {
        "seq_gru": (93.49, 6.41, 26.57),
        "seq_lstm": (87.07, 13.54, 47.04),
        "paral_gru": (91.01, 7.98, 46.25),
        "paral_lstm": (90.50, 8.60, 47.43),
        "conv1d": (56.18, 79.54, 7.73),
    },
}


def load_model(path: str | Path, device: str = "cpu") -> DHN:
    """A DHN from a weights file (``.safetensors``), a run's ``checkpoint.pt``, or a
    registry name with ``pretrained`` weights (e.g. ``seq_gru``)."""
    path_str = str(path)
    p = Path(path_str)
    if p.suffix == ".pt":
        state = load_checkpoint(p)
        model = build_dhn(DHNConfig.from_dict(state["config"]["dhn"]))
        model.load_state_dict(state["model"])
        return model.to(device).eval()
    if p.is_file():
        return load_dhn(p).to(device).eval()
    if p.suffix == "" and "/" not in path_str:
        return create_dhn(path_str, pretrained=True).to(device).eval()
    raise DeepMOTError(f"{p}: no such weights file")


def load_split(data: str | Path, split: str) -> DHNDataset:
    """``data/<split>.safetensors`` (or ``data`` itself if it is a file)."""
    p = Path(data)
    return DHNDataset.load(p / f"{split}.safetensors" if p.is_dir() else p)


def batches_of(
    dataset: DHNDataset, batch_size: int = 32, max_entries: int | None = 200_000
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Padded ``(D, A*, mask)`` batches of similar-size matrices, in a fixed order; a batch is
    cut early when ``batch * N * M`` would pass ``max_entries``."""
    for batch in size_grouped_batches(dataset.shapes, batch_size):
        chunk: list[int] = []
        for i in batch:
            n, m = dataset.shapes[i]
            if chunk and max_entries and (len(chunk) + 1) * n * m > max_entries:
                yield collate([dataset[j] for j in chunk])
                chunk = []
            chunk.append(int(i))
        if chunk:
            yield collate([dataset[j] for j in chunk])


def _model_predict(model: DHN, device: str) -> Callable[[Tensor, Tensor], Tensor]:
    def predict(d: Tensor, mask: Tensor) -> Tensor:
        return model(d.to(device), mask.to(device))

    return predict


def evaluate_split(
    model: DHN | None, dataset: DHNDataset, device: str = "cpu", batch_size: int = 32
) -> dict[str, Any]:
    """WA/MA/SA/exact (row- and column-wise) of ``model`` and of the 1 − D rule.

    Returns:
        ``{"dhn": {"row": {...}, "col": {...}}, "one_minus_d": {...}, "matrices": K,
        "seconds": s}`` (``"dhn"`` absent when ``model`` is None).
    """
    report: dict[str, Any] = {"matrices": len(dataset)}
    if model is not None:
        model.eval()
        start = time.monotonic()
        counts = evaluate(_model_predict(model, device), batches_of(dataset, batch_size))
        report["seconds"] = time.monotonic() - start
        report["dhn"] = summarize(counts["all"])
    base = evaluate(lambda d, m: one_minus_d(d, m), batches_of(dataset, batch_size))
    report["one_minus_d"] = summarize(base["all"])
    return report


def format_report(report: dict[str, Any], title: str = "") -> str:
    """A plain-text table of :func:`evaluate_split`'s output."""
    lines = [title] if title else []
    lines.append(f"{report['matrices']} matrices")
    lines.append(
        f"{'discretisation':<16}{'method':<14}{'WA %':>8}{'MA %':>8}{'SA %':>8}{'exact %':>9}"
    )
    for mode in MODES:
        label = "row-wise max" if mode == "row" else "column-wise max"
        for key, name in (("dhn", "DHN"), ("one_minus_d", "1 - D rule")):
            if key not in report:
                continue
            r = report[key][mode]
            lines.append(
                f"{label:<16}{name:<14}{r['WA']:8.2f}{r['MA']:8.2f}{r['SA']:8.2f}{r['exact']:9.2f}"
            )
    return "\n".join(lines)


REAL_BINS = (5, 10, 20, 40, 99, 200, 300)
"""Upper edges of the size bins (largest side, max(N, M)) of real frames in the size study;
99 keeps crowded frames (100 objects or more) in bins of their own."""


def _real_bin(n: int, m: int) -> int:
    side = max(n, m)
    return next((edge for edge in REAL_BINS if side <= edge), side)


def size_study(
    models: dict[str, DHN],
    dataset: DHNDataset,
    out_dir: str | Path,
    device: str = "cpu",
    include_baseline: bool = True,
    progress: bool = True,
    real: DHNDataset | None = None,
) -> Path:
    """WA and exact match per matrix size (Fig. 8, extended) for each model and the 1 − D rule.

    ``dataset`` (uniform random square matrices) is grouped by its side N; ``real`` (frames of
    a split, optional) by its largest side in the bins :data:`REAL_BINS` (a bin is named by
    its upper edge). Writes ``size_study.csv``, ``size_study.md`` (row-wise WA and exact
    match, model against rule, per size) and ``size_study.png`` in ``out_dir``, with a
    progress bar over the matrices of each method. Returns the PNG path.
    """
    from tqdm import tqdm

    from deepmot.viz.dhn import plot_size_study

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictors: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        name: _model_predict(m.eval(), device) for name, m in models.items()
    }
    if include_baseline:
        predictors["1 - D rule"] = lambda d, m: one_minus_d(d, m)
    sets: list[tuple[str, DHNDataset, Callable[[int, int], int]]] = [
        ("uniform", dataset, lambda n, m: n)
    ]
    if real is not None and len(real):
        sets.append(("real", real, _real_bin))
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, dict[int, dict[str, float]]]] = {"WA": {}, "exact": {}}
    for set_name, data, group in sets:
        for name, predict in predictors.items():
            bar = tqdm(total=len(data), desc=f"size study {set_name}: {name}", disable=not progress)

            def counted(batches: Iterator, bar: Any = bar) -> Iterator:
                for batch in batches:
                    bar.update(len(batch[0]))
                    yield batch

            counts = evaluate(predict, counted(batches_of(data, 10, 400_000)), group=group)
            bar.close()
            label = name if set_name == "uniform" else f"{name} (real frames)"
            for size in sorted(counts):
                s = summarize(counts[size])
                for metric in curves:
                    curves[metric].setdefault(label, {})[int(size)] = {
                        mode: s[mode][metric] for mode in MODES
                    }
                rows.append(
                    {
                        "set": set_name,
                        "method": name,
                        "size": int(size),
                        "matrices": counts[size]["row"].matrices,
                        **{f"{k}_{mode}": round(s[mode][k], 4) for mode in MODES for k in s[mode]},
                    }
                )
    csv_path = out_dir / "size_study.csv"
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(out_dir / "size_study.md", format_size_table(rows) + "\n")
    png = out_dir / "size_study.png"
    plot_size_study(curves["WA"], png, exact=curves["exact"])
    return png


def format_size_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`size_study`'s rows: per set and size, each method's
    row-wise WA and exact match (``uniform``: side N; ``real``: largest side up to the
    size)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by_key = {(r["set"], r["size"], r["method"]): r for r in rows}
    keys = list(dict.fromkeys((r["set"], r["size"]) for r in rows))
    head = ["set", "size", "matrices"]
    head += [f"WA {m}" for m in methods] + [f"exact {m}" for m in methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for set_name, size in keys:
        found = [by_key.get((set_name, size, m)) for m in methods]
        first = next(r for r in found if r is not None)
        cells = [set_name, f"{'<=' if set_name == 'real' else ''}{size}", str(first["matrices"])]
        cells += ["" if r is None else f"{r['WA_row']:.1f}" for r in found]
        cells += ["" if r is None else f"{r['exact_row']:.1f}" for r in found]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_ablation(
    data: str | Path,
    out_dir: str | Path,
    names: Sequence[str],
    overrides: Mapping[str, dict[str, Any]],
    train_config: Any,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """The paper's Table 5: train every variant in ``names`` with the same training settings
    and budget (``train_config``: epochs, ``max_iters`` or ``max_minutes``), evaluate each on
    the test split (WA/MA/SA and exact match, row- and column-wise, next to the paper's
    figures and the 1 − D rule), and write ``ablation.csv``, ``ablation.md`` and
    ``ablation.json`` in ``out_dir`` (each variant's run in ``out_dir/<name>``).

    Args:
        data: a folder from ``deepmot dhn data``.
        out_dir: output folder.
        names: variants of :func:`~deepmot.assign.dhn.list_dhns`.
        overrides: per name, :class:`DHNConfig` fields (missing name: the variant's defaults).
        train_config: a :class:`~deepmot.train.dhn.DHNTrainConfig`; its name and model are
            replaced per variant.
        progress: progress bars.

    Returns:
        The rows (one per variant and discretisation, the rule's last) and the Markdown table.
    """
    from deepmot.train.dhn import train_dhn

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test = load_split(data, "test")
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    for name in names:
        model = create_dhn(name, **overrides.get(name, {}))
        config = replace(train_config, name=name, dhn=model.config)
        configs[name] = config.to_dict()
        start = time.monotonic()
        summary = train_dhn(data, out_dir / name, config, progress=progress)
        minutes = (time.monotonic() - start) / 60
        model = load_model(summary["weights"])
        report = evaluate_split(model, test)
        for mode in MODES:
            r = report["dhn"][mode]
            paper = PAPER_TABLE5[mode].get(name, ("", "", ""))
            rows.append(
                {
                    "discretisation": mode,
                    "network": name,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "iterations": summary["iterations"],
                    "train_minutes": round(minutes, 1),
                    **{k: round(v, 2) for k, v in r.items()},
                    "paper_WA": paper[0],
                    "paper_MA": paper[1],
                    "paper_SA": paper[2],
                }
            )
    for mode in MODES:
        r = report["one_minus_d"][mode]
        rows.append(
            {
                "discretisation": mode,
                "network": "1 - D rule",
                "parameters": 0,
                "iterations": 0,
                "train_minutes": 0,
                **{k: round(v, 2) for k, v in r.items()},
                "paper_WA": "",
                "paper_MA": "",
                "paper_SA": "",
            }
        )
    rows.sort(key=lambda r: MODES.index(r["discretisation"]))
    fields = list(rows[0])
    with atomic_path(out_dir / "ablation.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    md = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    md += ["| " + " | ".join(str(r[k]) for k in fields) + " |" for r in rows]
    table = "\n".join(md)
    where = torch.device(train_config.device).type
    atomic_write_text(
        out_dir / "ablation.md",
        f"Ablation on {len(test)} test matrices (trained on {where}); per-variant settings in "
        f"ablation.json\n\n{table}\n",
    )
    atomic_write_text(
        out_dir / "ablation.json",
        json.dumps(
            {"test_matrices": len(test), "device": where, "configs": configs, "rows": rows},
            indent=2,
        )
        + "\n",
    )
    return rows, table
