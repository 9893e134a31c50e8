"""Run a registered table into its folder: ``results.json`` (rows, the paper's rows, resolved
settings, seeds, library versions, machine, wall time), ``table.md`` and the table's plot.

``results.json`` is what the results page (:mod:`deepmot.reproduce.page`) is generated from.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from deepmot.io.atomic import atomic_write_text
from deepmot.reproduce.registry import (
    SEED_ROWS_FILE,
    Column,
    TableContext,
    TableSpec,
    get_table,
)

__all__ = ["RESULTS_FILE", "aggregate_seeds", "format_rows", "machine", "reproduce_table"]

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
_LIBRARIES = ("deepmot", "torch", "torchvision", "numpy", "scipy", "optuna", "matplotlib")


def versions() -> dict[str, str]:
    """Installed versions of the libraries the tables depend on, and Python's."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    """The machine: OS, processor, CPU count, memory, the load average (a shared machine's
    wall times are inflated by the load)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["processor"] = line.split(":", 1)[1].strip()
                break
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / 2**30, 1)
    except (OSError, ValueError):
        pass
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def aggregate_seeds(
    per_seed: Mapping[str, Sequence[Mapping[str, Any]]], columns: Sequence[Column]
) -> list[dict[str, Any]]:
    """Rows of several seeds (same rows in the same order) as mean and population std."""
    import numpy as np

    runs = list(per_seed.values())
    rows = []
    for index, first in enumerate(runs[0]):
        row: dict[str, Any] = {"row": first["row"]}
        for column in columns:
            values = np.array([run[index][column.name] for run in runs], dtype=float)
            row[column.name] = float(values.mean())
            row[f"{column.name}_std"] = float(values.std())
        rows.append(row)
    return rows


def _cell(value: float | None, std: float | None, column: Column, seeds: int) -> str:
    if value is None:
        return "–"
    text = f"{value:.{column.decimals}f}"
    if seeds > 1 and std is not None:
        text += f" ± {std:.{column.decimals}f}"
    return text


def format_rows(record: Mapping[str, Any]) -> str:
    """A results record as markdown: each of our rows (mean ± std over the seeds), the paper's
    row of the same name below it in italics where the paper has one; best of ours in bold."""
    columns = [Column(**c) for c in record["columns"]]
    seeds = len(record["seeds"])
    rows, paper = record["rows"], record.get("paper") or {}
    best = {}
    for column in columns:
        values = [r[column.name] for r in rows if r.get(column.name) is not None]
        if values:
            best[column.name] = max(values) if column.higher_is_better else min(values)
    header = ["", *(f"{c.name} {'↑' if c.higher_is_better else '↓'}" for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns)]
    for row in rows:
        cells = [f"{row['row']} (ours)" if paper else str(row["row"])]
        for column in columns:
            value = row.get(column.name)
            text = _cell(value, row.get(f"{column.name}_std"), column, seeds)
            bold = value is not None and len(rows) > 1 and value == best.get(column.name)
            cells.append(f"**{text}**" if bold else text)
        lines.append("| " + " | ".join(cells) + " |")
        if row["row"] in paper:
            theirs = paper[row["row"]]
            cells = [f"*{row['row']} (paper)*"]
            for column in columns:
                value = theirs.get(column.name)
                cells.append("–" if value is None else f"*{value:.{column.decimals}f}*")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + _format_differences(record, columns, seeds)


def _format_differences(record: Mapping[str, Any], columns: list[Column], seeds: int) -> str:
    """The record's paired differences as a table of their own (empty text without any)."""
    differences = record.get("differences") or []
    if not differences:
        return ""
    lines = [
        "",
        "",
        f"Paired differences: row A minus row B in the same seed, mean ± std over {seeds} "
        "seed(s); above 0 is better where ↑, below 0 where ↓.",
        "",
        "| " + " | ".join(["", *(c.name for c in columns)]) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for row in differences:
        cells = [str(row["row"])]
        cells += [_cell(row.get(c.name), row.get(f"{c.name}_std"), c, seeds) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _check_run_folder(folder: Path, settings: Mapping[str, Any], resume: bool) -> None:
    """Refuse to start over a run (finished seeds are never replaced); on ``resume``, refuse
    other settings, and keep the seeds a record of an earlier version lists (it saved no
    ``seed<N>/rows.json``)."""
    from deepmot.errors import DeepMOTError

    record_path = folder / RESULTS_FILE
    finished = sorted(p.parent.name for p in folder.glob(f"seed*/{SEED_ROWS_FILE}"))
    if not resume:
        if finished or record_path.is_file():
            done = f" (finished: {', '.join(finished)})" if finished else ""
            raise DeepMOTError(
                f"--out: {folder} holds a run already{done}: --resume continues it and keeps "
                "its finished seeds, or choose another --out"
            )
        return
    if not record_path.is_file():
        return
    record = json.loads(record_path.read_text())
    wanted = json.loads(json.dumps(dict(settings)))
    before = record.get("settings", {})
    differ = sorted(k for k in {*wanted, *before} - {"seeds"} if wanted.get(k) != before.get(k))
    if differ:
        raise DeepMOTError(
            f"--resume: {folder} was run with other settings ({', '.join(differ)}); resume "
            "with those, or choose another --out"
        )
    for seed, rows in record.get("per_seed", {}).items():
        path = folder / f"seed{seed}" / SEED_ROWS_FILE
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({"seed": int(seed), "rows": rows}, indent=1) + "\n")


def _start_record(
    spec: TableSpec,
    scale: str,
    settings: dict[str, Any],
    data: str | Path,
    started: datetime,
    load_before: Any,
) -> dict[str, Any]:
    """The ``results.json`` record of a run before its first seed: the table's description,
    the settings, the paper's rows, the versions and the machine."""
    return {
        "table": spec.name,
        "title": spec.title,
        "paper_ref": spec.paper_ref,
        "scale": scale,
        "settings": settings,
        "seeds": [],
        "data": str(data),
        "columns": [
            {"name": c.name, "higher_is_better": c.higher_is_better, "decimals": c.decimals}
            for c in spec.columns
        ],
        "rows": [],
        "per_seed": {},
        "paper": {k: dict(v) for k, v in spec.paper.items()},
        "explanation": spec.explanation,
        "notes": "",
        "plot": None,
        "started_utc": started.isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": {**machine(), "load_average_at_start": load_before},
        "finished": False,
    }


def reproduce_table(
    name: str,
    out: str | Path,
    data: str | Path,
    scale: str = "cpu",
    seeds: Sequence[int] | None = None,
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> Path:
    """Run table ``name`` at ``scale`` into ``out/<name>/`` and return that folder.

    Each seed's rows are saved in ``seed<N>/rows.json`` as soon as the seed is done, and
    ``results.json`` is written after every seed (``"finished": false`` until the last one),
    so a stopped run loses at most the seed it was in.

    Args:
        name: a registered table (:func:`~deepmot.reproduce.registry.list_tables`).
        out: the parent folder.
        data: the folder of MOTChallenge sequences the tables read.
        scale: ``"cpu"`` or ``"full"``.
        seeds: replace the scale's seeds.
        progress: progress bars.
        overrides: replace some of the scale's settings (recorded with the results).
        resume: continue a run in ``out/<name>/`` with the same settings: its finished seeds
            are read back, not run again; without it, a folder holding a run is an error.

    Raises:
        ValueError: an unknown table or scale.
        DeepMOTError: a run in the folder (without ``resume``), or other settings (with it).
    """
    spec = get_table(name)
    if scale not in spec.scales:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(spec.scales)}")
    settings = {**spec.scales[scale], **(overrides or {})}
    if seeds is not None:
        settings["seeds"] = list(seeds)
    folder = Path(out) / name
    _check_run_folder(folder, settings, resume)
    folder.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    load_before = machine().get("load_average")
    start, cpu_start = time.perf_counter(), time.process_time()
    record = _start_record(spec, scale, settings, data, started, load_before)

    def save(**fields: Any) -> None:
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        record.update(fields, wall_time_s=round(wall, 1), cpu_time_s=round(cpu, 1))
        atomic_write_text(folder / RESULTS_FILE, json.dumps(record, indent=2) + "\n")

    def seed_done(seed: str, rows: list[dict[str, Any]]) -> None:
        per_seed = {**record["per_seed"], seed: rows}
        save(
            per_seed=per_seed,
            seeds=[int(s) for s in per_seed],
            rows=aggregate_seeds(per_seed, spec.columns),
            notes=f"unfinished: seeds {', '.join(per_seed)} of {settings.get('seeds')}",
        )

    result = spec.run(TableContext(folder, settings, Path(data), progress, seed_done))
    save(
        rows=result.rows,
        per_seed=result.per_seed,
        seeds=list(settings.get("seeds", [])),
        notes=result.notes,
        differences=result.differences,
        plot=result.plot.name if result.plot is not None else None,
        finished=True,
    )
    wall, cpu = record["wall_time_s"], record["cpu_time_s"]
    text = [
        f"# {spec.title} ({spec.paper_ref} layout)",
        "",
        format_rows(record),
        "",
        f"{result.notes} Scale {scale}, seeds {record['seeds']}, wall time {wall:.0f} s "
        f"(CPU time of this process {cpu:.0f} s).",
    ]
    atomic_write_text(folder / "table.md", "\n".join(text) + "\n")
    log.info("%s: %d rows in %.0f s -> %s", name, len(result.rows), wall, folder)
    return folder
