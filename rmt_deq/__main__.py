"""``python -m rmt_deq``: the ``rmt-deq`` command line (:mod:`rmt_deq.cli`)."""
import sys

from rmt_deq.cli import main

if __name__ == "__main__":
    sys.exit(main())
