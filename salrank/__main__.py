"""``python -m salrank``: the command line (:mod:`salrank.cli`)."""

import sys

from salrank.cli import main

sys.exit(main())
