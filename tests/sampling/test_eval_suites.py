"""`workbench eval`'s suites: lm-evaluation-harness on a local task, and a prompt set scored by a reward model.

The harness's numbers are checked against log-likelihoods and greedy answers computed here with
transformers; the reward suite's against the reward model's scores of answers generated here.
"""

from __future__ import annotations

import json

import pytest
import torch

from workbench.config_base import ConfigError

pytestmark = pytest.mark.slow

MC_DOCS = [{"question": f"What is {a} + {b}?", "choices": [str(a + b), str(a + b + 1), str(a * b)], "answer": i % 3}
           for i, (a, b) in enumerate([(1, 2), (3, 4), (5, 6), (7, 8), (12, 30), (9, 9), (2, 2), (40, 2)])]
GEN_DOCS = [{"question": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in [(1, 2), (3, 4), (12, 30)]]
MC_YAML = """task: wb_tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
GEN_YAML = """task: wb_tiny_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""
PROMPTS = ["What is 12 + 30?", "Translate into French: cat", "Reverse the order of these words: red green blue",
           "Write the word house in capital letters."]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    """A local task folder: a multiple-choice and a generate_until task over JSONL files (no hub)."""
    folder = tmp_path_factory.mktemp("harness_tasks")
    for name, docs, yaml in (("mc", MC_DOCS, MC_YAML), ("gen", GEN_DOCS, GEN_YAML)):
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(d) + "\n" for d in docs))
        (folder / f"{name}.yaml").write_text(yaml.format(data=data))
    return folder


@pytest.fixture(scope="module")
def harness_result(tiny_model_dir, task_dir):
    from sampling.harness import run_harness

    return run_harness(tiny_model_dir, ["wb_tiny_mc", "wb_tiny_gen"], include_path=task_dir, batch_size=4,
                       log_samples=True)


def _loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens | context), the continuation's tokens taken from the whole string's."""
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    start = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), dim=-1)
    return sum(logprobs[t - 1, whole[t]].item() for t in range(start, len(whole)))


def test_harness_accuracy_equals_the_argmax_of_log_likelihoods_computed_here(harness_result, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    correct = []
    for doc in MC_DOCS:
        scores = [_loglikelihood(model, tokenizer, f"{doc['question']}\nAnswer:", f" {c}") for c in doc["choices"]]
        correct.append(max(range(len(scores)), key=lambda i: (scores[i], -i)) == doc["answer"])
    accuracy = sum(correct) / len(correct)
    assert 0 < accuracy < 1  # the check can tell right from wrong on this model
    assert harness_result["results"]["wb_tiny_mc"]["acc,none"] == pytest.approx(accuracy)
    assert harness_result["n_samples"]["wb_tiny_mc"]["effective"] == len(MC_DOCS)
    # the harness's own per-document records agree with its aggregate
    samples = harness_result["samples"]["wb_tiny_mc"]
    assert sum(s["acc"] for s in samples) / len(samples) == pytest.approx(accuracy)


def test_harness_generation_is_the_greedy_answer_computed_here(harness_result, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    by_doc = {s["doc_id"]: s for s in harness_result["samples"]["wb_tiny_gen"]}
    matches = []
    for i, doc in enumerate(GEN_DOCS):
        ids = tokenizer(f"{doc['question']}\nAnswer:", add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(out[0, ids.shape[1]:]).split("\n")[0]
        assert by_doc[i]["filtered_resps"][0] == text
        matches.append(text.strip() == doc["answer"])
    assert harness_result["results"]["wb_tiny_gen"]["exact_match,none"] == pytest.approx(sum(matches) / len(matches))


def test_harness_headline_names_task_and_metric(harness_result):
    from sampling.harness import format_table, headline

    flat = headline(harness_result)
    assert set(flat) == {"harness/wb_tiny_mc/acc", "harness/wb_tiny_gen/exact_match"}
    assert "wb_tiny_mc/acc" in format_table(harness_result)
    json.dumps(harness_result)  # JSON-able as written


def test_harness_with_the_chat_template_renders_requests_with_the_models_own_template(tiny_model_dir, task_dir):
    from transformers import AutoTokenizer

    from sampling.harness import run_harness

    result = run_harness(tiny_model_dir, ["wb_tiny_mc"], include_path=task_dir, limit=2, apply_chat_template=True,
                         log_samples=True)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for sample in result["samples"]["wb_tiny_mc"]:
        doc = MC_DOCS[sample["doc_id"]]
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": f"{doc['question']}\nAnswer:"}],
                                                 tokenize=False, add_generation_prompt=True)
        assert [a[0] for a in sample["arguments"]] == [rendered] * len(doc["choices"])
    assert result["config"]["apply_chat_template"] is True


def test_unknown_harness_tasks_and_missing_task_folders_are_named(tiny_model_dir, task_dir, tmp_path):
    from sampling.harness import run_harness

    with pytest.raises(ConfigError, match=r"unknown lm-evaluation-harness task\(s\) \['no_such_task'\]"):
        run_harness(tiny_model_dir, ["wb_tiny_mc", "no_such_task"], include_path=task_dir)
    with pytest.raises(FileNotFoundError, match="nowhere: not a folder of task YAML files"):
        run_harness(tiny_model_dir, ["wb_tiny_mc"], include_path=tmp_path / "nowhere")


# -- reward-scored prompt set ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return path


def _sampling_cfg():
    from sampling.config import SamplingConfig

    return SamplingConfig(backend="transformers", batch_size=4, reward_batch_size=3)


def test_mean_reward_is_the_mean_of_the_reward_models_scores_of_the_models_greedy_answers(
        prompt_file, tiny_model_dir, tiny_reward_dir, hf_backend):
    from reward.scoring import RewardScorer
    from sampling.reward_eval import read_prompt_set, reward_eval

    prompts = read_prompt_set(prompt_file)
    assert [p["messages"] for p in prompts] == [[{"role": "user", "content": p}] for p in PROMPTS]
    result = reward_eval(tiny_model_dir, prompts, tiny_reward_dir, _sampling_cfg(), backend="transformers",
                         max_new_tokens=8, seed=0, device="cpu")
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    answers = [g[0].text for g in hf_backend.generate(conversations, n=1, temperature=0.0, top_p=1.0,
                                                      max_new_tokens=8, seed=0)]
    scorer = RewardScorer(tiny_reward_dir, batch_size=1)  # one at a time, unlike the suite's batches of 3
    scores = scorer.score(conversations, answers)
    assert [r["answer"] for r in result["rows"]] == answers
    assert [r["reward"] for r in result["rows"]] == pytest.approx(scores, abs=1e-5)
    assert result["mean_reward"] == pytest.approx(sum(scores) / len(scores), abs=1e-5)
    assert result["prompts"] == len(PROMPTS) and "win_rate" not in result


def test_win_rate_against_itself_is_one_half_all_ties(prompt_file, tiny_model_dir, tiny_reward_dir):
    from sampling.reward_eval import read_prompt_set, reward_eval

    result = reward_eval(tiny_model_dir, read_prompt_set(prompt_file), tiny_reward_dir, _sampling_cfg(),
                         backend="transformers", max_new_tokens=8, seed=0, baseline_dir=tiny_model_dir, device="cpu")
    assert (result["wins"], result["losses"], result["ties"], result["win_rate"]) == (0, 0, len(PROMPTS), 0.5)
    assert result["baseline_mean_reward"] == result["mean_reward"]


def test_win_rate_against_another_model_counts_the_reward_models_pairwise_verdicts(
        prompt_file, tiny_model_dir, stopping_policy_dir, tiny_reward_dir, hf_backend, stopping_backend):
    from reward.scoring import RewardScorer
    from sampling.reward_eval import read_prompt_set, reward_eval

    result = reward_eval(stopping_policy_dir, read_prompt_set(prompt_file), tiny_reward_dir, _sampling_cfg(),
                         backend="transformers", max_new_tokens=8, seed=0, baseline_dir=tiny_model_dir, device="cpu")
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    gen = dict(n=1, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    mine = [g[0].text for g in stopping_backend.generate(conversations, **gen)]
    theirs = [g[0].text for g in hf_backend.generate(conversations, **gen)]
    scorer = RewardScorer(tiny_reward_dir, batch_size=1)
    wins = losses = ties = 0
    for conv, a, b in zip(conversations, mine, theirs):  # the reward model compares each pair on its own
        sa, sb = scorer.score([conv], [a])[0], scorer.score([conv], [b])[0]
        ties += a == b or sa == sb
        wins += a != b and sa > sb
        losses += a != b and sa < sb
    assert wins + losses > 0  # the two models answer differently somewhere, so this checks a comparison
    assert (result["wins"], result["losses"], result["ties"]) == (wins, losses, ties)
    assert result["win_rate"] == pytest.approx((wins + ties / 2) / len(PROMPTS))


def test_compare_counts_ties_by_equal_text_or_margin():
    from sampling.reward_eval import compare

    got = compare([1.0, 2.0, 3.0, 0.5, 4.0], [0.0, 3.0, 3.0, 9.0, 3.95], ["a", "b", "c", "same", "e"],
                  ["x", "y", "z", "same", "f"], tie_margin=0.1)
    # wins: 1 vs 0; losses: 2 vs 3; ties: equal scores, equal text (whatever the scores), within the margin
    assert got == {"wins": 1, "losses": 1, "ties": 3, "win_rate": (1 + 1.5) / 5}
    with pytest.raises(ValueError, match="same prompts"):
        compare([1.0], [], ["a"], [])


def test_a_bad_prompt_record_is_named_by_file_and_line(tmp_path):
    from sampling.reward_eval import read_prompt_set

    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps({"prompt": 7}) + "\n")
    with pytest.raises(ValueError, match=r"p\.jsonl:2: .*prompt"):
        read_prompt_set(path)


# -- the config section and the command ---------------------------------------------------------------

def test_eval_section_refuses_a_suite_without_what_it_needs():
    from rounds.full_config import CONFIG_DIR, load_config

    smoke = CONFIG_DIR / "smoke.yaml"
    with pytest.raises(ConfigError, match=r"eval\.harness_tasks: empty, but suites includes harness"):
        load_config(smoke, ["eval.suites=[task_world,harness]"])
    with pytest.raises(ConfigError, match=r"eval\.prompts: null, but suites includes reward"):
        load_config(smoke, ["eval.suites=[reward]"])
    with pytest.raises(ConfigError, match=r"eval\.suites\[0\]: expected one of"):
        load_config(smoke, ["eval.suites=[vibes]"])


def test_eval_command_runs_the_named_suites_and_writes_their_metrics(
        tiny_model_dir, stopping_policy_dir, tiny_reward_dir, task_dir, prompt_file, tmp_path, capsys):
    from rounds.main import main

    out = tmp_path / "eval.json"
    code = main(["eval", "--model", str(stopping_policy_dir), "--out", str(out), "--backend", "transformers",
                 "--suites", "harness,reward", "--reward", str(tiny_reward_dir), "--baseline", str(tiny_model_dir),
                 "--set", "eval.harness_tasks=[wb_tiny_mc]", "--set", f"eval.harness_include_path={task_dir}",
                 "--set", f"eval.prompts={prompt_file}", "--set", "eval.max_new_tokens=8", "--set", "device=cpu"])
    assert code == 0
    written = json.loads(out.read_text())
    assert written["suites"] == ["harness", "reward"] and "per_family" not in written
    metrics = written["metrics"]
    assert metrics["harness/wb_tiny_mc/acc"] == written["harness"]["results"]["wb_tiny_mc"]["acc,none"]
    assert metrics["reward/win_rate"] == written["reward"]["win_rate"]
    assert metrics["reward/wins"] + metrics["reward/losses"] + metrics["reward/ties"] == len(PROMPTS)
    printed = capsys.readouterr().out
    assert "wb_tiny_mc/acc" in printed and "win rate" in printed and str(out) in printed


def test_the_reward_suite_needs_a_reward_model_outside_the_rounds(tiny_model_dir, prompt_file, tmp_path, capsys):
    from rounds.main import main

    code = main(["eval", "--model", str(tiny_model_dir), "--out", str(tmp_path / "x.json"), "--suites", "reward",
                 "--set", f"eval.prompts={prompt_file}"])
    assert code == 2
    assert "eval.reward_model: the reward suite needs a reward model" in capsys.readouterr().err


def test_in_a_round_the_reward_suite_uses_the_rounds_reward_model_and_the_previous_policy(
        tiny_model_dir, stopping_policy_dir, tiny_reward_dir, prompt_file, tmp_path):
    from rounds.full_config import CONFIG_DIR, load_config
    from sampling.evaluation import round_suites
    from workbench.rundir import RunDir

    cfg = load_config(CONFIG_DIR / "smoke.yaml", [
        f"run_dir={tmp_path / 'run'}", "eval.suites=[reward]", f"eval.prompts={prompt_file}", "eval.max_new_tokens=8",
        "rounds.generation_backend=transformers", "device=cpu"])
    run = RunDir(tmp_path / "run")
    for n in (1, 2):
        run.round_stage(n, "reward").mkdir(parents=True)
        (run.round_stage(n, "reward") / "model").symlink_to(tiny_reward_dir)
    run.round_stage(1, "policy").symlink_to(tiny_model_dir)
    result = round_suites(cfg, run, 2, tiny_model_dir, out=tmp_path / "eval.json")
    assert result["reward"]["reward_model"] == str(run.round_stage(2, "reward") / "model")
    assert result["reward"]["baseline"] == str(run.round_stage(1, "policy"))
    assert result["reward"]["win_rate"] == 0.5  # the round's model is the previous policy here: all ties
    with pytest.raises(FileNotFoundError, match=r"eval\.baseline .*bootstrap: not a model folder"):
        round_suites(cfg, run, 1, stopping_policy_dir)  # round 1 compares with the bootstrap policy (absent here)
