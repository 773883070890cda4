"""``python -m salrank``: the command line (also ``torchrun ... -m salrank``, see :mod:`salrank.distributed`)."""

import sys

from salrank.cli import main

if __name__ == "__main__":
    sys.exit(main())
