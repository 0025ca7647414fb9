"""``python -m fastnn``: the command line (fastnn.cli)."""

import sys

from .cli import main

# Guarded: mpi4py.futures workers (``python -m mpi4py.futures -m fastnn tune``) import this
# module under another name to find the functions they are sent, and must not run the CLI.
if __name__ == "__main__":
    sys.exit(main())
