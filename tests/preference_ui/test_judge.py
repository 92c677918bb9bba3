"""The AI judge: its verdict parser, the both-orders rule, retries and skips, and its answers through the store.

Expected values are written out by hand. :class:`RuleModel` stands in for a judge MODEL, not for the
judge logic: it reads the prompt the judge built and answers by a fixed rule, so the four levels,
position swapping, retries and the store path run for real; the tiny random model checks the
same path through a real backend and chat template, where every answer is garbage and gets skipped.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest
from pui_helpers import new_store

from preference_ui.items import validate_item
from preference_ui.judge import Judge, Verdict, combine, judge_messages, load_rubric, parse_verdict
from sampling.backends import Backend, Generation
from workbench.config_base import ConfigError

RUBRIC_FILE = Path(__file__).resolve().parents[2] / "preference_ui" / "rubrics" / "default.md"


# -- the parser -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Verdict: A significantly better", Verdict("A", "significantly_better")),
    ("Verdict: A better", Verdict("A", "better")),
    ("Verdict: A slightly better", Verdict("A", "slightly_better")),
    ("Verdict: A marginally better", Verdict("A", "marginally_better")),
    ("Verdict: B significantly better", Verdict("B", "significantly_better")),
    ("Verdict: B better", Verdict("B", "better")),
    ("Verdict: B slightly better", Verdict("B", "slightly_better")),
    ("Verdict: B marginally better", Verdict("B", "marginally_better")),
    ("Verdict: tie", Verdict("tie")),
    ("Verdict: both bad", Verdict("both_bad")),
    ("Verdict: cannot judge", Verdict("cannot_judge")),
    # case, spaces, one final period, reasoning before it and blank lines after it
    ("verdict: b SLIGHTLY Better.", Verdict("B", "slightly_better")),
    ("  Verdict:A   better  ", Verdict("A", "better")),
    ("A is right, B is not.\nVerdict: B better would be wrong.\nVerdict: A significantly better\n\n  \n",
     Verdict("A", "significantly_better")),
    ("Verdict: Both  Bad", Verdict("both_bad")),
])
def test_every_verdict_form_parses(text, expected):
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "   \n\n",
    "A is better.",
    "Verdict: A better\nI hope this helps.",  # the verdict must be the last line
    "Verdict: A",  # no level
    "Verdict: better",  # no side
    "Verdict: C better",
    "Verdict: A much better",
    "Verdict: A better because it is right",
    "Verdict: A better..",
    "Verdict A better",  # no colon
    "**Verdict: A better**",
    "Verdict: tie, both fine",
    "Verdict: A tie",
    "The verdict: A better",
])
def test_anything_else_is_unparseable(text):
    assert parse_verdict(text) is None


def test_the_shipped_rubric_lists_exactly_the_eleven_answers_the_parser_takes():
    text, digest = load_rubric()
    assert text == RUBRIC_FILE.read_text(encoding="utf-8")
    assert digest == hashlib.sha256(RUBRIC_FILE.read_bytes()).hexdigest()
    answers = [parse_verdict(line) for line in text.splitlines() if line.startswith("Verdict:")]
    assert len(answers) == len(set(answers)) == 11 and None not in answers
    for label in ("significantly better", "better", "slightly better", "marginally better", "tie", "both bad",
                  "cannot judge"):
        assert label in text.split("[Prompt]")[0]  # defined before the item


# -- the both-orders rule ---------------------------------------------------------------------------

@pytest.mark.parametrize("first, second, expected, disagreed", [
    (Verdict("A", "better"), Verdict("A", "better"), Verdict("A", "better"), False),
    (Verdict("A", "significantly_better"), Verdict("A", "slightly_better"), Verdict("A", "slightly_better"), False),
    (Verdict("B", "marginally_better"), Verdict("B", "significantly_better"), Verdict("B", "marginally_better"),
     False),
    (Verdict("A", "significantly_better"), Verdict("B", "significantly_better"), Verdict("tie"), True),
    (Verdict("A", "better"), Verdict("tie"), Verdict("tie"), True),
    (Verdict("both_bad"), Verdict("B", "better"), Verdict("tie"), True),
    (Verdict("tie"), Verdict("tie"), Verdict("tie"), False),
    (Verdict("both_bad"), Verdict("both_bad"), Verdict("both_bad"), False),
    (Verdict("cannot_judge"), Verdict("cannot_judge"), Verdict("cannot_judge"), False),
    (Verdict("both_bad"), Verdict("tie"), Verdict("tie"), True),
])
def test_both_orders_combine_to_the_weaker_level_or_a_tie(first, second, expected, disagreed):
    assert combine(first, second) == (expected, disagreed)


# -- the prompt -------------------------------------------------------------------------------------

def test_the_prompt_holds_the_texts_exactly_and_substitutes_once():
    rubric = "P={prompt}|A={response_a}|B={response_b}"
    tricky = "uses {response_b} and {prompt} literally"
    messages = judge_messages(rubric, [{"role": "user", "content": "Q?"}], tricky, "  \n")
    assert messages == [{"role": "user", "content": f"P=Q?|A={tricky}|B=  \n"}]
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}]
    assert judge_messages(rubric, turns, "x", "")[0]["content"] == "P=[system]\nBe brief.\n\n[user]\nQ?|A=x|B="


def test_a_rubric_without_its_placeholders_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "rubric.md"
    path.write_text("Compare {response_a} with this.")
    with pytest.raises(ConfigError, match=re.escape(f"{path} lacks {{prompt}}, {{response_b}}")):
        load_rubric(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_rubric(tmp_path / "missing.md")


# -- the judge through the store --------------------------------------------------------------------

_SHOWN = re.compile(r"\[Response A\]\n(.*?)\n\[End of response A\]\n\n\[Response B\]\n(.*?)\n\[End of response B\]",
                    re.S)


class RuleModel(Backend):
    """Stands in for a judge model: answers the default rubric's prompt by a fixed rule.

    A response's quality is the number after ``Answer:`` (0 without one, as for an empty response).
    The higher wins; the difference sets the level: >= 30 significantly, >= 20 better, >= 10 slightly,
    else marginally better; equal qualities are a tie, and two blank responses are both bad.
    ``BIASED`` in a response: always "A better". ``LEANS``: one level stronger when the winner is
    shown first. ``GARBAGE``: never a verdict. ``FLAKY``: no verdict the first time a prompt is seen.
    """

    LEVELS = ["marginally better", "slightly better", "better", "significantly better"]

    def __init__(self):
        self.calls, self.seen, self.shown = [], set(), []

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed):
        self.calls.append({"prompts": len(prompts), "temperature": temperature, "seed": seed})
        return [[Generation(self.answer(chat[0]["content"]), [1], "stop")] * n for chat in prompts]

    def answer(self, text: str) -> str:
        first, second = _SHOWN.search(text).groups()
        self.shown.append((first, second))
        both = first + second
        fresh = text not in self.seen
        self.seen.add(text)
        if "GARBAGE" in both or ("FLAKY" in both and fresh):
            return "Both responses look fine to me."
        if "BIASED" in both:
            return "The first one.\nVerdict: A better"
        if not first.strip() and not second.strip():
            return "Neither says anything.\nVerdict: both bad"
        q1, q2 = (int(m[1]) if (m := re.search(r"Answer: (\d+)", r)) else 0 for r in (first, second))
        if q1 == q2:
            return "Verdict: tie"
        step = sum(abs(q1 - q2) >= bound for bound in (10, 20, 30))
        if "LEANS" in both and q1 > q2:
            step = min(step + 1, 3)
        return f"Reasoning.\nVerdict: {'A' if q1 > q2 else 'B'} {self.LEVELS[step]}"


def _item(item_id: str, a: str, b: str, round: int = 1):
    return validate_item({"id": item_id, "prompt": f"Question {item_id}?", "responses": [a, b], "round": round},
                         "test")


ITEMS = [  # id, response a, response b, expected (winner, level) or outcome, by the rule above
    ("sig", "Answer: 40", "Answer: 5", ("a", "significantly_better")),
    ("bet", "Answer: 1", "Answer: 25", ("b", "better")),
    ("sli", "Answer: 12", "Answer: 1", ("a", "slightly_better")),
    ("mar", "Answer: 3", "Answer: 5", ("b", "marginally_better")),
    ("lean", "Answer: 50 LEANS", "Answer: 22", ("a", "better")),  # significantly when a is first, better when b is
    ("flaky", "Answer: 30 FLAKY", "Answer: 0", ("a", "significantly_better")),
    ("empty", "", "Answer: 12", ("b", "slightly_better")),
    ("tie", "Answer: 7", "Answer: 7 ", "tie"),
    ("bias", "Answer: 9 BIASED", "Answer: 2", "tie"),  # "A better" in both orders: a position disagreement
    ("blank", "  ", "\n", "both_bad"),
    ("garbage", "GARBAGE", "Answer: 3", None),
]


@pytest.fixture
def judged(tmp_path):
    """Every item of ITEMS judged in both orders (4 items per generation call, 2 retries).

    The store's display order is seeded, so which items are shown swapped is the same in every run (with an
    unseeded store, all seven decided items landed on one side about once in 64 runs)."""
    store = new_store(tmp_path / "annotations.sqlite", rng=random.Random(3))
    store.import_items([_item(i, a, b) for i, a, b, _ in ITEMS])
    model = RuleModel()
    judge = Judge(store, model, batch_items=4, retries=2, temperature=0.0, retry_temperature=0.7, seed=5)
    counts = judge.run(round=1)
    return store, model, counts


def test_the_judge_answers_every_level_through_the_store(judged):
    store, _, _ = judged
    got = {r.meta["item_id"]: r for r in store.export(round=1)}
    outcomes = {o["meta"]["item_id"]: o for o in store.export_outcomes(round=1)}
    for item_id, a, b, expected in ITEMS:
        if isinstance(expected, tuple):
            winner, level = expected
            record = got[item_id]
            assert (record.chosen, record.rejected, record.level, record.annotator) == \
                ((a, b) if winner == "a" else (b, a)) + (level, "judge")
            assert record.edited is None and record.meta["winner"] == winner
        elif expected is None:
            assert item_id not in got and item_id not in outcomes
        else:
            assert outcomes[item_id]["outcome"] == expected and item_id not in got
            assert (outcomes[item_id]["response_a"], outcomes[item_id]["response_b"]) == (a, b)
    # the store's random display order was used both ways, and mapped back
    assert {r.meta["shown_swapped"] for r in got.values()} == {True, False}


def test_counts_retries_skips_and_position_disagreements(judged):
    store, model, counts = judged
    assert counts == {"submitted": 10, "skipped": 1, "asked": 22 + 4 + 2, "retried": 6, "position_disagreements": 1,
                      "verdict_a": 4, "verdict_b": 3, "verdict_tie": 2, "verdict_both_bad": 1,
                      "verdict_cannot_judge": 0}
    assert [s["item_id"] for s in store.skips(round=1)] == ["garbage"]
    assert "unparseable after 2 retries" in store.skips(round=1)[0]["reason"]
    actions = [(e["action"], e["item_id"]) for e in store.audit_log(user="judge")]
    assert sum(a == "submit" for a, _ in actions) == 10 and ("skip", "garbage") in actions
    # first answers greedy, retries sampled; each item asked in both orders
    assert {c["temperature"] for c in model.calls} == {0.0, 0.7}
    assert ("Answer: 12", "") in model.shown and ("", "Answer: 12") in model.shown
    assert store.stats(round=1)["annotators"] == {"judge": 10}


def test_one_order_per_item_without_both_orders(tmp_path):
    store = new_store(tmp_path / "annotations.sqlite", rng=random.Random(3))  # seeded display order
    plain = [row for row in ITEMS if row[0] in ("sig", "bet", "sli", "mar", "empty", "tie")]
    store.import_items([_item(i, a, b) for i, a, b, _ in plain] +
                       [_item(f"more{k}", f"Answer: {k}", "Answer: 100") for k in range(14)])
    model = RuleModel()
    counts = Judge(store, model, both_orders=False, seed=1).run()
    assert counts["asked"] == 20 and counts["submitted"] == 20 and counts["position_disagreements"] == 0
    got = {r.meta["item_id"]: (r.chosen, r.level) for r in store.export()}
    for item_id, a, b, expected in plain:
        if expected != "tie":
            assert got[item_id] == ((a if expected[0] == "a" else b), expected[1])
    assert all(got[f"more{k}"] == ("Answer: 100", "significantly_better") for k in range(14))
    b_first = sum(first == "Answer: 100" for first, _ in model.shown)
    assert 0 < b_first < 14  # the "more" items were asked some with b first, some with a first


def test_limit_stops_the_judge_and_a_second_run_resumes(tmp_path):
    store = new_store(tmp_path / "annotations.sqlite")
    store.import_items([_item(f"x{k}", f"Answer: {k}", "Answer: 50") for k in range(5)])
    judge = Judge(store, RuleModel(), batch_items=8)
    assert judge.run(limit=2)["submitted"] == 2 and judge.counts["asked"] == 4
    assert judge.run()["submitted"] == 5 and store.count_completed() == 5


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformers", "vllm"])
def test_a_real_model_through_a_real_backend_is_skipped_when_it_answers_garbage(tmp_path, tiny_model_dir, kind,
                                                                                  request):
    from sampling.backends import TransformersBackend, VLLMBackend

    rubric = tmp_path / "short.md"
    rubric.write_text("Which is better?\n{prompt}\nA: {response_a}\nB: {response_b}\nEnd with 'Verdict: ...'.")
    store = new_store(tmp_path / "annotations.sqlite")
    store.import_items([_item("p1", "Answer: 1", "Answer: 2"), _item("p2", "", "Answer: 9")])
    backend = (TransformersBackend(tiny_model_dir, device="cpu") if kind == "transformers"
               else VLLMBackend(tiny_model_dir, llm=request.getfixturevalue("vllm_engine")))
    with backend:
        counts = Judge(store, backend, rubric, max_new_tokens=6, retries=1, seed=0).run()
    assert (counts["submitted"], counts["skipped"], counts["asked"], counts["retried"]) == (0, 2, 8, 4)
    assert [s["item_id"] for s in store.skips()] == ["p1", "p2"] and store.export() == []
    assert store.get_item("p2").response_a == ""  # stored exactly


# -- the round's preferences stage in judge mode ----------------------------------------------------

class PolicyModel(Backend):
    """Stands in for the two policies: the newest answers ``Answer: 40 `` (trailing space kept), the other
    an empty or whitespace-only response, and for one prompt the newest writes GARBAGE."""

    def __init__(self, newest: bool):
        self.newest = newest

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed, keys=None):
        texts = [("GARBAGE " if i == 2 else "Answer: 40 ") if self.newest else ("" if i % 2 else " \n")
                 for i in range(len(prompts))]
        return [[Generation(t, [1], "stop")] * n for t in texts]


def test_the_preferences_stage_in_judge_mode_stores_responses_exactly(tmp_path, monkeypatch):
    from rounds.full_config import load_config
    from rounds.stages import preferences
    from workbench.rundir import RunDir, read_manifest
    from workbench.stage import run_stage

    judge_dir = tmp_path / "judge-model"
    judge_dir.mkdir()
    (judge_dir / "config.json").write_text("{}")
    cfg = load_config(overrides=["annotation.mode=judge", f"annotation.judge.model={judge_dir}",
                                 "rounds.prompts_per_round=6", f"run_dir={tmp_path / 'run'}", "tracking.backend=none"])
    run = RunDir(tmp_path / "run")
    judge_model = RuleModel()
    opened = []

    def fake_backend(cfg_, model, name=None):
        opened.append((Path(model), name))
        if Path(model) == judge_dir:
            return judge_model
        return PolicyModel(newest=Path(model) == preferences.policy_before(run, 1))

    monkeypatch.setattr(preferences, "backend", fake_backend)  # the judge's
    # the two models' answers are generated in claimed shards (sampling.rejection.generate_responses)
    monkeypatch.setattr("sampling.backends.make_backend", lambda cfg_, model, **kwargs: fake_backend(cfg_, model))
    metrics = run_stage(preferences.STAGE, cfg, run, 1)
    out = run.round_stage(1, "preferences")
    rows = [json.loads(line) for line in (out / "preferences.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["chosen"] == "Answer: 40 " and r["level"] == "significantly_better" for r in rows)
    assert sorted(r["rejected"] for r in rows) == ["", "", "", " \n", " \n"]
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert items[2]["responses"] == ["GARBAGE ", " \n"]
    assert metrics["judge_model"] == str(judge_dir) and metrics["judge_rubric"] == "default"
    assert metrics["judge_rubric_sha256"] == hashlib.sha256(RUBRIC_FILE.read_bytes()).hexdigest()
    assert (metrics["judge_submitted"], metrics["judge_skipped"], metrics["judge_position_disagreements"]) == (5, 1, 0)
    assert metrics["preferences"] == 5 and metrics["skipped"] == 1
    manifest = read_manifest(out)
    assert manifest["status"] == "done" and manifest["inputs"]["judge"]["path"] == str(judge_dir)
    assert opened[-1] == (judge_dir, None)


def test_a_judge_model_folder_without_a_model_is_refused_naming_the_field(tmp_path):
    from rounds.full_config import load_config
    from rounds.stages.preferences import judge_items

    cfg = load_config(overrides=["annotation.mode=judge", f"annotation.judge.model={tmp_path}"])
    store = new_store(tmp_path / "annotations.sqlite")
    with pytest.raises(ConfigError, match=f"annotation.judge.model: {re.escape(str(tmp_path))} is not a model folder"):
        judge_items(cfg, store, 1)


def test_judge_mode_needs_a_judge_model():
    from rounds.full_config import load_config

    with pytest.raises(ConfigError, match=r"annotation\.judge\.model: judge mode needs"):
        load_config(overrides=["annotation.mode=judge"])
    with pytest.raises(ConfigError, match=r"annotation\.judge\.retries: must be 0 or more"):
        load_config(overrides=["annotation.judge.retries=-1"])


def _teach(model_dir: Path, out: Path, chats: list[list[dict]], answer: str, steps: int = 50) -> Path:
    """The tiny model fine-tuned to answer ``answer`` to each chat (rendered by its own chat template)."""
    import torch
    from transformers import AutoModelForCausalLM

    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    rows = [list(tokenizer.apply_chat_template(chat + [{"role": "assistant", "content": answer}])["input_ids"])
            for chat in chats]
    batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_a_real_position_biased_model_ends_in_ties_and_counts_them(tmp_path, tiny_model_dir):
    """A real model taught to always answer "A better": both orders expose it; one order takes its word."""
    from sampling.backends import TransformersBackend

    rubric = tmp_path / "short.md"
    rubric.write_text("Which is better?\n{prompt}\nA: {response_a}\nB: {response_b}")
    items = [_item("p1", "Answer: 1", "Answer: 2"), _item("p2", "", "Answer: 9")]
    text, _ = load_rubric(rubric)
    chats = [judge_messages(text, i.prompt, *pair) for i in items
             for pair in ((i.response_a, i.response_b), (i.response_b, i.response_a))]
    model_dir = _teach(tiny_model_dir, tmp_path / "biased", chats, "I read both.\nVerdict: A better")
    with TransformersBackend(model_dir, device="cpu") as backend:
        assert [g[0].text for g in backend.generate(chats, n=1, temperature=0.0, top_p=1.0, max_new_tokens=48,
                                                    seed=0)] == ["I read both.\nVerdict: A better"] * 4
        store = new_store(tmp_path / "both.sqlite")
        store.import_items(items)
        counts = Judge(store, backend, rubric, max_new_tokens=48).run()
        assert (counts["submitted"], counts["position_disagreements"], counts["retried"]) == (2, 2, 0)
        assert [o["outcome"] for o in store.export_outcomes()] == ["tie", "tie"] and store.export() == []
        store = new_store(tmp_path / "one.sqlite")
        store.import_items(items)
        counts = Judge(store, backend, rubric, max_new_tokens=48, both_orders=False).run()
        assert counts["submitted"] == 2 and counts["asked"] == 2
        assert [r.level for r in store.export()] == ["better", "better"]
