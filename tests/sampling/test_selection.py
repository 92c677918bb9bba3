"""sampling.selection: how rejection sampling keeps one sample per prompt (and what each mode loads and checks)."""

import random
from collections import Counter

import pytest

from sampling.config import SamplingConfig
from sampling.rejection import run_rejection_sampling, select_best
from sampling_helpers import write_prompts
from workbench.config_base import ConfigError, build


def row(pid, index, score, verified=None, finish="stop"):
    """One hand-built candidate row."""
    return {"prompt_id": pid, "sample_index": index, "score": score, "verified": verified, "finish_reason": finish}


def crafted() -> list[dict]:
    """Per prompt: the top score on a sample the verifier failed, the runner-up on a passing one, one cut off."""
    return [row("a", 0, 9.0, False), row("a", 1, 5.0, True), row("a", 2, 1.0, True), row("a", 3, 7.0, True, "length"),
            row("b", 0, 2.0, None), row("b", 1, 3.0, False), row("b", 2, 4.0, None, "length"),
            row("c", 0, 1.0, False), row("c", 1, 2.0, False)]


def kept(rows) -> dict[str, int]:
    """prompt id -> the chosen sample's index (exactly one per prompt that has one)."""
    chosen = [(r["prompt_id"], r["sample_index"]) for r in rows if r["chosen"]]
    assert len(chosen) == len({pid for pid, _ in chosen})
    return dict(chosen)


def test_verifier_reward_keeps_the_top_score_the_verifier_did_not_fail():
    rows = crafted()
    select_best(rows, "verifier_reward")
    assert kept(rows) == {"a": 1, "b": 0}  # c: every sample failed; a's 9.0 failed and its 7.0 was cut off


def test_reward_keeps_the_top_score_among_samples_that_stopped():
    rows = [row("a", 0, 9.0), row("a", 1, 5.0), row("a", 2, 11.0, finish="length"), row("b", 0, -1.0), row("b", 1, -2.0)]
    select_best(rows, "reward")
    assert kept(rows) == {"a": 0, "b": 0}


def many(prompts: int, samples: int, fail_every: int = 0) -> list[dict]:
    """``prompts`` x ``samples`` rows; sample 0 always scores highest; with ``fail_every``, every n-th sample fails."""
    return [row(f"p{p}", i, float(samples - i), False if fail_every and i % fail_every == 1 else True)
            for p in range(prompts) for i in range(samples)]


def test_random_is_uniform_over_samples_that_stopped_and_differs_from_reward():
    rows = many(1000, 5)
    rows += [row("cut", 0, 1.0, finish="length"), row("cut", 1, 0.0)]
    select_best(rows, "random", seed=7)
    choice = kept(rows)
    assert choice.pop("cut") == 1  # the sample cut off is never kept
    counts = Counter(choice.values())
    assert set(counts) == set(range(5)) and all(150 <= c <= 250 for c in counts.values()), counts
    rewarded = many(1000, 5)
    select_best(rewarded, "reward")
    assert set(kept(rewarded).values()) == {0}  # the reward model always keeps sample 0; random kept it ~1/5


def test_random_is_reproducible_per_seed_and_independent_of_row_order():
    first, again, shuffled, other = many(200, 4), many(200, 4), many(200, 4), many(200, 4)
    random.Random(0).shuffle(shuffled)
    for rows, seed in ((first, 3), (again, 3), (shuffled, 3), (other, 4)):
        select_best(rows, "random", seed=seed)
    assert kept(first) == kept(again) == kept(shuffled)
    assert sum(kept(first)[p] != kept(other)[p] for p in kept(first)) > 100  # another seed, other draws (~3/4)


def test_verifier_keeps_a_random_passing_sample_whatever_the_scores():
    rows = many(600, 4, fail_every=2)  # samples 1 and 3 fail; sample 0 scores highest and passes
    for r in rows:
        r["score"] = None  # the verifier mode never scores
    select_best(rows, "verifier", seed=1)
    counts = Counter(kept(rows).values())
    assert set(counts) == {0, 2} and 240 <= counts[0] <= 360, counts


def test_a_prompt_with_only_failing_or_cut_off_samples_keeps_none_in_every_mode():
    for mode in ("verifier_reward", "verifier"):
        rows = [row("a", 0, 1.0, False), row("a", 1, 2.0, True, "length")]
        select_best(rows, mode)
        assert kept(rows) == {}


# -- the config ------------------------------------------------------------------------------------

def test_deprecated_verify_tasks_false_reads_as_reward_selection():
    assert build(SamplingConfig, {"verify_tasks": False}, "x.yaml: sampling").selection_mode == "reward"
    assert build(SamplingConfig, {"verify_tasks": True}, "x.yaml: sampling").selection_mode == "verifier_reward"
    assert build(SamplingConfig, {"selection": "random"}, "x.yaml: sampling").selection_mode == "random"


@pytest.mark.parametrize("fields", [{"verify_tasks": True, "selection": "random"},
                                    {"verify_tasks": False, "selection": "verifier"}])
def test_verify_tasks_contradicting_selection_is_refused_naming_the_field(fields):
    with pytest.raises(ConfigError, match=r"x\.yaml: sampling\.verify_tasks: .*selection"):
        build(SamplingConfig, fields, "x.yaml: sampling")


def test_an_unknown_selection_is_refused():
    with pytest.raises(ConfigError, match="sampling.selection"):
        build(SamplingConfig, {"selection": "best"}, "x.yaml: sampling")


# -- the stage -------------------------------------------------------------------------------------

def cfg(**kwargs) -> SamplingConfig:
    """A small transformers-backend config."""
    return SamplingConfig(**{"backend": "transformers", "k": 4, "max_new_tokens": 12, "shard_size": 3,
                             "batch_size": 3, **kwargs})


def read_rows(out):
    import pyarrow.parquet as pq

    return [r for path in sorted((out / "candidates").glob("*.parquet")) for r in pq.read_table(path).to_pylist()]


def test_random_selection_loads_no_reward_model_and_reruns_identically(tmp_path, stopping_policy_dir, stopping_backend):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 8)
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name / "samples"
        # no reward folder and no scorer: loading a reward model would fail
        metrics = run_rejection_sampling(cfg(selection="random"), stopping_policy_dir, None, prompts, out, seed=5,
                                         backend=stopping_backend, device="cpu")
        assert metrics["selection"] == "random" and metrics["mean_score_all"] is None
        runs.append([{k: v for k, v in r.items() if k != "gen_time_s"} for r in read_rows(out)])  # timing aside
    assert runs[0] == runs[1]
    assert (tmp_path / "one" / "samples" / "sft.jsonl").read_bytes() == (tmp_path / "two" / "samples" / "sft.jsonl").read_bytes()
    assert all(r["score"] is None and r["verified"] is None for r in runs[0])
    stopped = {r["prompt_id"] for r in runs[0] if r["finish_reason"] == "stop"}
    assert {r["prompt_id"] for r in runs[0] if r["chosen"]} == stopped


def test_reward_selection_ignores_a_verifier_and_needs_a_reward_model(tmp_path, stopping_policy_dir, stopping_backend,
                                                                      tiny_reward_dir):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 3)
    calls = []
    verifier = lambda record, response: calls.append(response) or False  # noqa: E731 - would fail every sample
    with pytest.raises(ValueError, match="selection reward needs a reward model"):
        run_rejection_sampling(cfg(selection="reward"), stopping_policy_dir, None, prompts, tmp_path / "x" / "samples",
                               seed=0, backend=stopping_backend, device="cpu")
    out = tmp_path / "rs" / "samples"
    metrics = run_rejection_sampling(cfg(selection="reward"), stopping_policy_dir, tiny_reward_dir, prompts, out,
                                     seed=0, verifier=verifier, backend=stopping_backend, device="cpu")
    rows = read_rows(out)
    assert calls == [] and all(r["verified"] is None for r in rows)
    assert metrics["selection"] == "reward" and metrics["num_selected"] >= 1


def test_verifier_selection_checks_samples_without_a_reward_model(tmp_path, stopping_policy_dir, stopping_backend):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 6)
    out = tmp_path / "rs" / "samples"
    even = lambda record, response: len(response) % 2 == 0  # noqa: E731
    metrics = run_rejection_sampling(cfg(selection="verifier"), stopping_policy_dir, None, prompts, out, seed=0,
                                     verifier=even, backend=stopping_backend, device="cpu")
    rows = read_rows(out)
    assert all(r["verified"] == (len(r["text"]) % 2 == 0) and r["score"] is None for r in rows)
    assert all(r["verified"] and r["finish_reason"] == "stop" for r in rows if r["chosen"])
    eligible = {r["prompt_id"] for r in rows if r["verified"] and r["finish_reason"] == "stop"}
    assert metrics["num_selected"] == len(eligible) and metrics["selection"] == "verifier"
