"""A training call stand-in that launched processes can import (tests/workbench is put on PYTHONPATH)."""

import time


def nap(seconds: float, out_dir: str) -> dict:
    """Sleep like a long training call."""
    time.sleep(seconds)
    return {"slept": seconds}
