"""``python -m bench``: see :mod:`bench`."""

import sys

from .run import main

sys.exit(main())
