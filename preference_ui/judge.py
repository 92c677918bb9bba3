"""The AI judge (``annotation.mode: judge``): a chat model annotates preference items through the store.

The judge is an annotator account like the simulated one: it claims items and submits answers with
the same store calls as a person, so export, agreement and the audit log treat it as any annotator.

**Prompt.** The rubric is a text file (the shipped default is ``preference_ui/rubrics/default.md``)
holding ``{prompt}``, ``{response_a}`` and ``{response_b}``. Each is replaced once (text inside a
response is never substituted again), the responses exactly as stored, and the result goes to the
model as one user turn through the model's own chat template (no system turn: some templates have none).

**Answer.** The answer's last non-empty line must be ``Verdict: <answer>``, where <answer> is ``A`` or
``B`` followed by ``significantly better``, ``better``, ``slightly better`` or ``marginally better``, or
one of ``tie``, ``both bad``, ``cannot judge``. Case, spaces around words and one final period are
ignored; anything else is unparseable. An unparseable answer is asked again ``retries`` times (at
``retry_temperature``: a greedy retry would repeat it); an item still without an answer is skipped in
the store with that reason, and counted.

**Position bias.** With ``both_orders`` each pair is asked as (a, b) and as (b, a). The two answers,
mapped back to the responses a and b, combine as follows:

- the same winner: that winner, at the weaker of the two levels;
- the same outcome (tie, both bad, cannot judge): that outcome;
- anything else (opposite winners, a winner against an outcome, two different outcomes): a tie,
  counted as a position disagreement: no preference survives swapping the order.

Without ``both_orders`` each pair is asked once, in an order drawn per item from the seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from preference_ui.items import Item, prompt_text
from preference_ui.store import OUTCOMES, Claim, Store
from workbench.config_base import ConfigError
from workbench.preferences import LEVEL_LABELS, LEVEL_STRENGTH, LEVELS

DEFAULT_RUBRIC = "default.md"
PLACEHOLDERS = ("prompt", "response_a", "response_b")
_PLACEHOLDER = re.compile(r"\{(prompt|response_a|response_b)\}")
_LEVEL_BY_LABEL = {LEVEL_LABELS[level]: level for level in LEVELS}
_OUTCOME_BY_LABEL = {"tie": "tie", "both bad": "both_bad", "cannot judge": "cannot_judge"}
_VERDICT = re.compile(r"verdict:\s*(?:(?P<side>[ab])\s+(?P<level>{levels})|(?P<outcome>{outcomes}))\s*\.?".format(
    levels="|".join(sorted((re.escape(label).replace(r"\ ", r"\s+") for label in _LEVEL_BY_LABEL), key=len,
                           reverse=True)),
    outcomes="|".join(re.escape(label).replace(r"\ ", r"\s+") for label in _OUTCOME_BY_LABEL)), re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """One answer: ``choice`` 'A' or 'B' (the first or second response asked about) with a level, or an outcome."""

    choice: str
    level: str | None = None

    def swapped(self) -> "Verdict":
        """The same answer with the two responses' places exchanged."""
        return Verdict({"A": "B", "B": "A"}.get(self.choice, self.choice), self.level)


def parse_verdict(text: str) -> Verdict | None:
    """The verdict on the answer's last non-empty line, or None when that line is not a verdict."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    match = _VERDICT.fullmatch(lines[-1]) if lines else None
    if match is None:
        return None
    if match["outcome"]:
        return Verdict(_OUTCOME_BY_LABEL[" ".join(match["outcome"].lower().split())])
    return Verdict(match["side"].upper(), _LEVEL_BY_LABEL[" ".join(match["level"].lower().split())])


def combine(first: Verdict, second: Verdict) -> tuple[Verdict, bool]:
    """Two answers on the same (a, b) order combined by the rule in the module docstring: (verdict, disagreed)."""
    if first.choice == second.choice and first.choice in ("A", "B"):
        weaker = min(first.level, second.level, key=LEVEL_STRENGTH.__getitem__)
        return Verdict(first.choice, weaker), False
    if first.choice == second.choice:
        return first, False
    return Verdict("tie"), True


def load_rubric(path: str | Path | None = None) -> tuple[str, str]:
    """The rubric text (``path``, or the shipped default) and its sha256; refuses one missing a placeholder."""
    if path is None:
        where = f"preference_ui/rubrics/{DEFAULT_RUBRIC}"
        text = resources.files("preference_ui").joinpath("rubrics", DEFAULT_RUBRIC).read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"annotation.judge.rubric: cannot read {where}: {exc}") from None
    missing = [f"{{{name}}}" for name in PLACEHOLDERS if f"{{{name}}}" not in text]
    if missing:
        raise ConfigError(f"annotation.judge.rubric: {where} lacks {', '.join(missing)}; the rubric must hold "
                          f"{{prompt}}, {{response_a}} and {{response_b}} where the item's texts go")
    return text, hashlib.sha256(text.encode()).hexdigest()


def judge_messages(rubric: str, prompt: list[dict], first: str, second: str) -> list[dict]:
    """The chat the judge reads: the rubric with the prompt and the two responses filled in, as one user turn."""
    values = {"prompt": prompt_text(prompt), "response_a": first, "response_b": second}
    return [{"role": "user", "content": _PLACEHOLDER.sub(lambda m: values[m[1]], rubric)}]


class Judge:
    """An annotator account whose answers come from a judge model behind a sampling backend.

    ``backend`` is any :class:`sampling.backends.Backend` (opened by the caller, which also closes it).
    ``counts`` accumulates over :meth:`run` calls: submitted, skipped (unparseable), asked (prompts sent),
    retried (answers asked again), position_disagreements, and the combined verdicts per choice.
    """

    def __init__(self, store: Store, backend, rubric: str | Path | None = None, *, name: str = "judge",
                 max_new_tokens: int = 256, temperature: float = 0.0, retries: int = 2,
                 retry_temperature: float = 0.7, both_orders: bool = True, batch_items: int = 32, seed: int = 0):
        self.store, self.backend, self.name = store, backend, name
        self.rubric, self.rubric_sha256 = load_rubric(rubric)
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.retries, self.retry_temperature = retries, retry_temperature
        self.both_orders, self.batch_items, self.seed = both_orders, batch_items, seed
        self.counts = {"submitted": 0, "skipped": 0, "asked": 0, "retried": 0, "position_disagreements": 0,
                       **{f"verdict_{c}": 0 for c in ("a", "b", *OUTCOMES)}}
        store.ensure_user(name)

    @classmethod
    def from_config(cls, store: Store, judge_cfg, backend, seed: int = 0, name: str | None = None) -> "Judge":
        """A judge set up by an ``annotation.judge`` section (:class:`preference_ui.config.JudgeConfig`)."""
        return cls(store, backend, judge_cfg.rubric, name=name or judge_cfg.user,
                   max_new_tokens=judge_cfg.max_new_tokens, temperature=judge_cfg.temperature,
                   retries=judge_cfg.retries, retry_temperature=judge_cfg.retry_temperature,
                   both_orders=judge_cfg.both_orders, batch_items=judge_cfg.batch_items, seed=seed)

    def _orders(self, item: Item) -> list[bool]:
        """The orders an item is asked in (True: b first)."""
        if self.both_orders:
            return [False, True]
        return [random.Random(f"{self.seed}:{self.name}:{item.id}").random() < 0.5]

    def _ask(self, chats: list[list[dict]], temperature: float, attempt: int) -> list[str]:
        """One answer per chat."""
        self.counts["asked"] += len(chats)
        outs = self.backend.generate(chats, n=1, temperature=temperature, top_p=1.0,
                                     max_new_tokens=self.max_new_tokens, seed=self.seed + 1_000_003 * attempt)
        return [out[0].text for out in outs]

    def verdicts(self, items: list[Item]) -> dict[str, Verdict | None]:
        """The combined verdict on each item, on its responses (a, b); None when an answer stayed unparseable."""
        asks = [(item, b_first) for item in items for b_first in self._orders(item)]
        chats = [judge_messages(self.rubric, item.prompt, *((item.response_b, item.response_a) if b_first
                                                            else (item.response_a, item.response_b)))
                 for item, b_first in asks]
        # 1) every order of every item at once, 2) the unparseable ones again, up to `retries` times
        answers = [parse_verdict(text) for text in self._ask(chats, self.temperature, 0)]
        for attempt in range(1, self.retries + 1):
            redo = [i for i, v in enumerate(answers) if v is None]
            if not redo:
                break
            self.counts["retried"] += len(redo)
            for i, text in zip(redo, self._ask([chats[i] for i in redo], self.retry_temperature, attempt)):
                answers[i] = parse_verdict(text)
        # 3) back to the order (a, b), then both orders combined
        per_item: dict[str, list[Verdict | None]] = {}
        for (item, b_first), verdict in zip(asks, answers):
            per_item.setdefault(item.id, []).append(verdict.swapped() if verdict and b_first else verdict)
        out = {}
        for item_id, found in per_item.items():
            if None in found:
                out[item_id] = None
                continue
            verdict = found[0]
            if len(found) == 2:
                verdict, disagreed = combine(*found)
                self.counts["position_disagreements"] += disagreed
            out[item_id] = verdict
        return out

    def _submit(self, claim: Claim, verdict: Verdict | None) -> None:
        """Submit a verdict on (a, b) as the side shown in the claim, or skip the item without one."""
        if verdict is None:
            self.store.skip(self.name, claim.item_id,
                            f"judge answer unparseable after {self.retries} retries (no 'Verdict:' last line)")
            self.counts["skipped"] += 1
            return
        shown = verdict.swapped() if claim.swapped else verdict
        self.store.submit(self.name, claim.item_id, shown.choice, shown.level)
        self.counts["submitted"] += 1
        self.counts[f"verdict_{verdict.choice.lower()}"] += 1

    def run(self, round: int | None = None, limit: int | None = None) -> dict:
        """Annotate until nothing is left for this account (or ``limit`` items); returns :attr:`counts`.

        Items are judged ``batch_items`` at a time: the claimed item and the next ones the store would
        hand out; a read-ahead item that someone else completes first is judged again when claimed.
        """
        done, ready = 0, {}
        while limit is None or done < limit:
            claim = self.store.claim_next(self.name, round=round)
            if claim is None:
                break
            if claim.item_id not in ready:
                room = self.batch_items if limit is None else min(self.batch_items, limit - done)
                ahead = self.store.open_items(self.name, round=round, limit=room - 1)
                ready = self.verdicts([self.store.get_item(claim.item_id), *ahead])
            self._submit(claim, ready.pop(claim.item_id))
            done += 1
        return self.counts
