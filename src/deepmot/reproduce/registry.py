"""The table registry of ``deepmot reproduce``: one function and one registration per table.

A table is a :class:`TableSpec`: a ``run(context) -> TableResult`` function, its settings per
scale (``cpu``: under 30 minutes on a 2-core CPU, ``real`` about 50; ``full``: what a GPU user
runs), the paper's
rows it compares with, and the text that explains the differences (shown on the results page
beside the numbers). Registering is one call in the table's module::

    register_table(TableSpec(
        name="dhn", title="DHN variants (WA, MA, SA)", paper_ref="Tables 5 and 6",
        run=run_dhn_table, scales={"cpu": {...}, "full": {...}},
        columns=(Column("WA", True), ...), paper=PAPER_DHN_ROWS, explanation="...",
    ))

and an import of the module in :mod:`deepmot.reproduce` (``_TABLE_MODULES``). A module
imports only the standard library at top level; ``run`` imports what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SEED_ROWS_FILE",
    "Column",
    "TableContext",
    "TableResult",
    "TableSpec",
    "get_table",
    "list_tables",
    "register_table",
]


@dataclass(frozen=True)
class Column:
    """A column: its key in the rows, whether higher is better, and its decimals (0: a
    count)."""

    name: str
    higher_is_better: bool
    decimals: int = 2


#: The file in ``<table folder>/seed<N>/`` that marks seed N finished and holds its rows.
SEED_ROWS_FILE = "rows.json"


@dataclass(frozen=True)
class TableContext:
    """What a table's ``run`` gets: its folder, resolved settings (the scale's, with the
    user's seeds), the data folder, and whether to show progress bars; ``seed_done`` is told
    each seed's rows as soon as they are known (the runner writes ``results.json`` then)."""

    out: Path
    settings: Mapping[str, Any]
    data: Path
    progress: bool = True
    seed_done: Callable[[str, list[dict[str, Any]]], None] | None = None

    def seed_rows(
        self, seed: int, compute: Callable[[], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The rows of one seed, each seed run once: a seed an earlier run finished
        (``seed<N>/rows.json``) is read back, its folder untouched; otherwise ``compute()``
        runs in a fresh ``seed<N>/`` (what an interrupted run left there is removed) and its
        rows are saved there before the next seed starts.
        """
        import json
        import shutil

        from deepmot.io.atomic import atomic_write_text

        folder = self.out / f"seed{seed}"
        path = folder / SEED_ROWS_FILE
        if path.is_file():
            rows = json.loads(path.read_text())["rows"]
        else:
            if folder.exists():
                shutil.rmtree(folder)
            rows = compute()
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({"seed": seed, "rows": rows}, indent=1) + "\n")
        if self.seed_done is not None:
            self.seed_done(str(seed), rows)
        return rows


@dataclass(frozen=True)
class TableResult:
    """What a table's ``run`` returns.

    Attributes:
        rows: one dict per row: ``"row"`` (its label), then per column the mean over seeds
            and ``<column>_std`` (the population std; 0 for one seed).
        per_seed: seed (as text) -> the rows of that seed alone.
        plot: the figure the run wrote (inside ``context.out``), or None.
        notes: one line about what was measured (data, split, iterations).
        differences: paired comparisons, one dict per pair: ``"row"`` (``"Δ A − B"``), then
            per column the mean over seeds of A's value minus B's in the same seed and
            ``<column>_std``; shown as a table of their own below the rows.
    """

    rows: list[dict[str, Any]]
    per_seed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plot: Path | None = None
    notes: str = ""
    differences: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TableSpec:
    """A registered table (see the module doc).

    Attributes:
        name: the ``deepmot reproduce`` argument.
        title: a one-line title.
        paper_ref: where the paper's numbers come from (``"Table 2"``).
        run: ``context -> TableResult``.
        scales: ``"cpu"`` and ``"full"`` -> settings (``seeds`` among them).
        columns: the table's columns, in order.
        paper: row label -> column -> the paper's value, for the rows it has a counterpart
            of (an empty mapping where the paper has no comparable number).
        explanation: why our numbers differ from the paper's (the results page shows it).
        reads_data: whether the table reads ``--data`` (False: it makes its own scenes).
    """

    name: str
    title: str
    paper_ref: str
    run: Callable[[TableContext], TableResult]
    scales: Mapping[str, Mapping[str, Any]]
    columns: tuple[Column, ...]
    paper: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    explanation: str = ""
    reads_data: bool = True


_TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    """Register ``spec`` under its name; ValueError on a duplicate or a missing scale."""
    if spec.name in _TABLES:
        raise ValueError(f"a table named {spec.name!r} is registered already")
    missing = {"cpu", "full"} - set(spec.scales)
    if missing:
        raise ValueError(f"table {spec.name!r} has no settings for scale(s) {sorted(missing)}")
    _TABLES[spec.name] = spec
    return spec


def list_tables() -> list[str]:
    """The registered table names."""
    return sorted(_TABLES)


def get_table(name: str) -> TableSpec:
    """The table ``name``; ValueError listing the valid names if unknown."""
    if name not in _TABLES:
        raise ValueError(f"unknown table {name!r}; valid: {', '.join(list_tables())}")
    return _TABLES[name]
