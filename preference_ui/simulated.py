"""The simulated annotator (TASKS.md): judges two responses with the task world's verifiers.

Rules, on the task in the item's ``meta["task"]`` (a ``Task.to_dict()``):

1. a correct response beats an incorrect one: significantly better when the loser is far off
   (closeness < 0.5), better otherwise;
2. of two correct ones the shorter (cleaner) wins: slightly better when it is under 80% of the
   other's length, marginally better otherwise;
3. of two incorrect ones the closer one wins marginally (ties: the shorter, then a coin);
4. with probability ``noise`` it picks the other response, as people err;
5. with probability ``edit_prob`` it edits the chosen response into the task's reference solution,
   giving edited > chosen > rejected.

It is an account in the store and answers through the same claim/submit calls as a person; its
random draws are seeded per (seed, annotator, item), so a run is reproducible whatever the order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from preference_ui.store import Claim, Store

CLEARLY_SHORTER = 0.8  # length ratio under which the shorter correct response wins "slightly"
FAR_OFF = 0.5  # closeness under which an incorrect loser makes the win "significant"


@dataclass
class Judgement:
    """Which of two responses won ('first' or 'second'), how clearly, and an optional edit."""

    winner: str
    level: str
    edited: str | None = None


def _default_verify():
    from workbench.tasks import verify

    return verify


def judge(task, first: str, second: str, rng: random.Random, edit_prob: float = 0.0,
          noise: float = 0.0, verify: Callable | None = None) -> Judgement:
    """Judge two responses to ``task`` by the rules in the module docstring."""
    verify = verify or _default_verify()
    v1, v2 = verify(task, first), verify(task, second)
    len1, len2 = len(first.strip()), len(second.strip())
    # 1) correctness decides
    if v1.correct != v2.correct:
        winner = "first" if v1.correct else "second"
        loser = v2 if v1.correct else v1
        level = "significantly_better" if loser.closeness < FAR_OFF else "better"
    # 2) both correct: the shorter, cleaner one, narrowly
    elif v1.correct:
        winner = ("first" if len1 < len2 else "second") if len1 != len2 else rng.choice(("first", "second"))
        ratio = min(len1, len2) / max(len1, len2, 1)
        level = "slightly_better" if ratio < CLEARLY_SHORTER else "marginally_better"
    # 3) both wrong: the closer one, marginally
    else:
        if v1.closeness != v2.closeness:
            winner = "first" if v1.closeness > v2.closeness else "second"
        elif len1 != len2:
            winner = "first" if len1 < len2 else "second"
        else:
            winner = rng.choice(("first", "second"))
        level = "marginally_better"
    # 4) people err
    if rng.random() < noise:
        winner = "second" if winner == "first" else "first"
    # 5) sometimes fix the chosen response
    chosen = first if winner == "first" else second
    edited = None
    if rng.random() < edit_prob and task.solution.strip() != chosen.strip():
        edited = task.solution
    return Judgement(winner, level, edited)


class SimulatedAnnotator:
    """An annotator account that claims items and submits verifier-based judgements."""

    def __init__(self, store: Store, name: str = "simulated", edit_prob: float = 0.1,
                 noise: float = 0.05, seed: int = 0, verify: Callable | None = None):
        self.store, self.name = store, name
        self.edit_prob, self.noise, self.seed = edit_prob, noise, seed
        self.verify = verify
        store.ensure_user(name)

    def answer(self, claim: Claim) -> tuple[str, str, str | None] | None:
        """(choice as shown, level, edit) for a claim, or None when its item carries no task."""
        from workbench.tasks import Task

        if not isinstance(claim.meta.get("task"), dict):
            return None
        rng = random.Random(f"{self.seed}:{self.name}:{claim.item_id}")
        verdict = judge(Task.from_dict(claim.meta["task"]), claim.left, claim.right, rng,
                        self.edit_prob, self.noise, self.verify)
        return ("A" if verdict.winner == "first" else "B"), verdict.level, verdict.edited

    def run(self, round: int | None = None, limit: int | None = None) -> dict:
        """Annotate until nothing is left for this account (or ``limit`` items): {"submitted", "skipped"}."""
        counts = {"submitted": 0, "skipped": 0}
        while limit is None or counts["submitted"] + counts["skipped"] < limit:
            claim = self.store.claim_next(self.name, round=round)
            if claim is None:
                break
            answer = self.answer(claim)
            if answer is None:
                self.store.skip(self.name, claim.item_id, "no task in the item's meta; cannot verify")
                counts["skipped"] += 1
                continue
            self.store.submit(self.name, claim.item_id, *answer)
            counts["submitted"] += 1
        return counts


def annotate_round(store: Store, round: int | None, annotators: int = 1, name: str = "simulated",
                   edit_prob: float = 0.1, noise: float = 0.05, seed: int = 0) -> dict:
    """Let ``annotators`` simulated accounts (name, name-2, ...) answer every open item of the round."""
    totals = {"submitted": 0, "skipped": 0}
    for k in range(annotators):
        account = name if k == 0 else f"{name}-{k + 1}"
        counts = SimulatedAnnotator(store, account, edit_prob, noise, seed).run(round=round)
        totals = {key: totals[key] + counts[key] for key in totals}
    return totals
