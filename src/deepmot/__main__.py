"""``python -m deepmot``: the ``deepmot`` command."""

from deepmot.cli import entry

entry()
