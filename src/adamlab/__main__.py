"""``python -m adamlab`` runs the command-line interface."""

import sys

from adamlab.cli.main import main

sys.exit(main())
