"""Inter-annotator agreement: Krippendorff's alpha on the signed ordinal preference scale.

A judgement becomes one number: +4..+1 (significantly better .. marginally better) when response a
(the first as imported, not as shown) wins, -4..-1 when b wins, 0 for a tie. Alpha is computed over the items that
at least two annotators judged, with the ordinal distance over the nine-value domain.

Per level (:func:`level_score`): for a level of strength s, each judgement becomes +1 (a wins by at
least that level), -1 (b wins by at least that level) or 0 (a weaker preference, or a tie). Alpha on
that three-value scale answers "would the annotators agree on the pairs kept if training used only
preferences of this level or stronger?" (the level filter of reward and DPO data). At the weakest
level (marginally better) it is agreement on the direction alone.
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


def level_score(score: int, level: str) -> int:
    """A signed score cut at ``level``: its sign when its strength reaches the level's, else 0."""
    if abs(score) < LEVEL_STRENGTH[level]:
        return 0
    return 1 if score > 0 else -1


def krippendorff_alpha(scores: Iterable[tuple[str, str, int]], domain: Iterable[int] = SIGNED_DOMAIN) -> dict:
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
    alpha = krippendorff.alpha(reliability_data=data, value_domain=list(domain),
                               level_of_measurement="ordinal")
    result["alpha"] = float(alpha) if math.isfinite(alpha) else None
    return result
