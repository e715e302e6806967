"""`python -m blt_model.cli` (what torchrun runs) is the `blt` command."""

import sys

from .commands import main

sys.exit(main())
