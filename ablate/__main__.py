"""``python -m ablate`` runs the command line."""

import sys

from ablate.cli import main

sys.exit(main())
