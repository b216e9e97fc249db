"""``python -m cipherfuse``: the same as the ``cipherfuse`` command."""

import sys

from cipherfuse.cli.main import main

sys.exit(main())
