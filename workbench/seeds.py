"""Derived seeds: every stage gets its own reproducible seed from the run's seed and its name."""

import hashlib


def derive_seed(seed: int, *parts: object, bits: int = 31) -> int:
    """A ``bits``-bit seed from the run seed and a path of names/numbers, stable across processes."""
    if not 1 <= bits <= 64:
        raise ValueError(f"bits: must be in 1..64, got {bits}")
    key = ":".join([str(seed), *map(str, parts)]).encode()
    digest = hashlib.sha256(key).digest()[:max(4, (bits + 7) // 8)]
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)
