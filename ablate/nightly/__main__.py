"""``python -m ablate.nightly``: the same command as ``ablate nightly``."""

import sys

from ablate.nightly import main

sys.exit(main(sys.argv[1:]))
