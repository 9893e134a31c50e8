"""The exact assignment solver of the metrics, without the cost of importing ``scipy.optimize``.

:func:`linear_sum_assignment` is SciPy's own solver (the compiled ``scipy.optimize._lsap``
extension, the very function ``scipy.optimize.linear_sum_assignment`` is), so results and the
way ties are broken are SciPy's. Importing the ``scipy.optimize`` package costs about 0.3 s
(it pulls in ``scipy.linalg``, ``scipy.sparse`` and the whole optimisation toolbox), more than
evaluating two MOTChallenge sequences; the extension alone loads in a few milliseconds. It is
loaded the first time it is called, and where loading it on its own fails (another SciPy
layout), ``scipy.optimize`` is imported as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

__all__ = ["linear_sum_assignment"]

_SOLVER: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None


def _load() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    name = "scipy.optimize._lsap"
    module = sys.modules.get(name)
    if module is None and "scipy.optimize" not in sys.modules:
        try:
            import importlib.machinery
            import importlib.util
            from pathlib import Path

            # where SciPy is, without running its __init__ (20 ms: version checks, test tools)
            package = importlib.util.find_spec("scipy")
            if package is None or not package.submodule_search_locations:
                raise ImportError("scipy")
            folder = Path(next(iter(package.submodule_search_locations))) / "optimize"
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = folder / f"_lsap{suffix}"
                if path.is_file():
                    spec = importlib.util.spec_from_file_location(name, path)
                    if spec is not None and spec.loader is not None:
                        candidate = importlib.util.module_from_spec(spec)
                        spec.loader.exec_module(candidate)
                        sys.modules[name] = module = candidate
                    break
        except Exception:  # noqa: BLE001 - any failure: the ordinary import below
            module = None
    solver = getattr(module, "linear_sum_assignment", None)
    if solver is None:
        from scipy.optimize import linear_sum_assignment as solver
    return solver


def linear_sum_assignment(
    cost: np.ndarray, maximize: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.optimize.linear_sum_assignment(cost, maximize)``: ``(row_ind, col_ind)``."""
    global _SOLVER
    if _SOLVER is None:
        _SOLVER = _load()
    return _SOLVER(cost, maximize=maximize)
