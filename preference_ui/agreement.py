"""Inter-annotator agreement: Krippendorff's alpha on the signed ordinal preference scale.

A judgement becomes one number: +4..+1 (significantly better .. marginally better) when response a
(the first as imported, not as shown) wins, -4..-1 when b wins, 0 for a tie. Alpha is computed over the items that
at least two annotators judged, with the ordinal distance over the nine-value domain.
"""

from __future__ import annotations

import math
from typing import Iterable

from workbench.preferences import LEVEL_STRENGTH

SIGNED_DOMAIN = (-4, -3, -2, -1, 0, 1, 2, 3, 4)  # 0: a tie


def signed_score(winner: str, level: str) -> int:
    """The signed ordinal score of a judgement: +strength when a won, -strength when b won."""
    if winner not in ("a", "b"):
        raise ValueError(f"winner {winner!r}: expected 'a' or 'b'")
    return LEVEL_STRENGTH[level] if winner == "a" else -LEVEL_STRENGTH[level]


def krippendorff_alpha(scores: Iterable[tuple[str, str, int]]) -> dict:
    """Alpha over (item, annotator, score) triples: {"alpha": float | None, "items": n, "annotations": n}.

    ``alpha`` is None when it is undefined: fewer than two overlapping items' worth of pairable
    judgements, or no variation at all in the data.
    """
    import krippendorff
    import numpy as np

    by_item: dict[str, dict[str, int]] = {}
    for item, annotator, score in scores:
        by_item.setdefault(item, {})[annotator] = score
    overlapping = {item: row for item, row in by_item.items() if len(row) >= 2}
    result = {"alpha": None, "items": len(overlapping),
              "annotations": sum(len(row) for row in overlapping.values())}
    values = {v for row in overlapping.values() for v in row.values()}
    if len(overlapping) < 2 or len(values) < 2:
        return result
    annotators = sorted({a for row in overlapping.values() for a in row})
    items = sorted(overlapping)
    data = np.full((len(annotators), len(items)), np.nan)
    for j, item in enumerate(items):
        for annotator, score in overlapping[item].items():
            data[annotators.index(annotator), j] = score
    alpha = krippendorff.alpha(reliability_data=data, value_domain=list(SIGNED_DOMAIN),
                               level_of_measurement="ordinal")
    result["alpha"] = float(alpha) if math.isfinite(alpha) else None
    return result
