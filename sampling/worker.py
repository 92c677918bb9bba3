"""A helper sampling worker: ``python -m sampling.worker STAGE_DIR`` claims shards until none is left.

The stage started with ``sampling.workers > 1`` starts these itself; on another machine run
``workbench sample-worker --out STAGE_DIR`` over the shared run folder.
"""

import logging
import sys

from sampling.rejection import run_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(name)s: %(message)s")
    run_worker(sys.argv[1])
