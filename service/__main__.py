"""`python -m service`: the command line (service/entry/cli.py)."""

import sys

from service.entry.cli import main

sys.exit(main())
