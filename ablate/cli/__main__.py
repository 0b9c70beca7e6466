"""``python -m ablate.cli`` runs the command line (as ``python -m ablate`` and ``ablate`` do)."""

import sys

from ablate.cli import main

sys.exit(main())
