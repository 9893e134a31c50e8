"""Subcommands of the ``deepmot`` command, one module each (see :mod:`deepmot.cli`).

A module here imports only the standard library at module level; heavy imports go inside
its ``run``.
"""

COMMANDS: list[str] = [
    "demo",
    "detector",
    "dhn",
    "eval",
    "frames",
    "reid",
    "reproduce",
    "results",
    "synth",
    "track",
    "train",
    "tune",
]
