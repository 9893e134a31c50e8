"""``deepmot reproduce``: the paper's tables, each one function and one registration
(:mod:`deepmot.reproduce.registry`), run into a folder with everything needed to check them
(:mod:`deepmot.reproduce.run`); the results page is generated from those folders
(:mod:`deepmot.reproduce.page`).

Registered tables: ``comparison`` (Table 3 layout), ``loss-ablation`` (Table 2 layout),
``correlation`` (dMOTA vs MOTA), ``dhn`` (Tables 5/6 and the Fig. 8 size study, around
``train.dhn_eval.run_ablation``), ``tracktor`` (Table 3 layout, Tracktor on synthetic scenes),
``sot`` (Table 3 layout, GOTURN and SiamRPN on synthetic scenes), ``loss-ablation-tracktor``,
``loss-ablation-goturn``, ``loss-ablation-siamrpn`` (Table 2 layout for the image trackers, on
synthetic scenes), ``real`` (Tables 1 and 3 layout for Tracktor, GOTURN and SiamRPN on real
frames). A table module is imported
here so that it registers: a new table is ``tables/<name>.py`` plus one entry in
``_TABLE_MODULES``.
"""

from __future__ import annotations

import importlib

from deepmot.reproduce.registry import (
    Column,
    TableContext,
    TableResult,
    TableSpec,
    get_table,
    list_tables,
    register_table,
)

__all__ = [
    "Column",
    "TableContext",
    "TableResult",
    "TableSpec",
    "get_table",
    "list_tables",
    "register_table",
]

_TABLE_MODULES = ("motion", "correlation", "dhn", "tracktor", "sot", "ablation", "real")

for _module in _TABLE_MODULES:
    importlib.import_module(f"deepmot.reproduce.tables.{_module}")
