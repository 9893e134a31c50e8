"""``python -m deepmot``: the ``deepmot`` command."""

import sys

from deepmot.cli import main

sys.exit(main())
