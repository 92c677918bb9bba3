"""Derived seeds: every stage gets its own reproducible seed from the run's seed and its name."""

import hashlib


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from the run seed and a path of names/numbers, stable across processes."""
    key = ":".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF
