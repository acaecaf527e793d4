"""``python -m bayesdl``: the command line (the same as the ``bayesdl`` script)."""

import sys

from .cli import main

if __name__ == "__main__":  # importing this module (e.g. by name) must not run the CLI
    sys.exit(main())
