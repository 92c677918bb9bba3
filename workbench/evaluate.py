"""A model's accuracy on held-out, canonical task-world instances, per family (`workbench eval`).

Greedy decoding; each family gets ``n_per_family`` distinct items from the evaluation side of the
held-out split (:mod:`workbench.tasks.heldout`), drawn with the eval seed, in exactly the canonical
phrasings of TASKS.md. The result is a JSON-able dict with ``per_family`` accuracies, their ``mean``,
details per template, a few examples, and ``heldout``: the distinct items per family and their
contamination, the share of them that the run's post-training prompts ask about (0 expected).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench import chat
from workbench import tasks as task_world
from workbench.jsonl import iter_jsonl_numbered
from workbench.tasks import heldout

Generate = Callable[[list[list[dict]], int], list[str]]  # (conversations, max_new_tokens) -> responses
EXAMPLES_PER_FAMILY = 2
VERIFY_WORKERS = 2  # code verification waits on sandbox children; two overlap well on two cores
MAX_REPEATS = 2000  # draws in a row that give only items already drawn: the family's evaluation side is used up
# Post-training data in a run folder: every JSONL under these folders (experts/_cpt holds pretraining corpora).
POSTTRAIN_FOLDERS = ("bootstrap", "rounds", "experts")
PRETRAINING_FOLDERS = ("experts/_cpt",)


def evaluation_tasks(n_per_family: int, seed: int, families: tuple[str, ...] = task_world.FAMILIES) -> list:
    """``n_per_family`` distinct evaluation-side items per family, canonical, the same for every model at ``seed``."""
    if n_per_family < 1:
        raise ValueError(f"n_per_family must be at least 1, got {n_per_family}")
    tasks = []
    for family in families:
        keys: set[str] = set()
        repeats = 0
        for task in task_world.world.stream(family, seed, canonical_only=True, split="eval"):
            key = heldout.item_key(task)
            repeats = repeats + 1 if key in keys else 0
            if repeats > MAX_REPEATS:
                raise ValueError(f"n_per_family {n_per_family}: the {family} family has only about {len(keys)} "
                                 "evaluation items; lower eval.n_per_family")
            if key not in keys:
                keys.add(key)
                tasks.append(task)
                if len(keys) == n_per_family:
                    break
    return tasks


def evaluate(model_dir: str | Path, n_per_family: int, seed: int, max_new_tokens: int, generate: Generate, *,
             run_dir: str | Path | None = None, families: tuple[str, ...] = task_world.FAMILIES) -> dict:
    """Score ``model_dir``'s answers (from ``generate``) per family on held-out canonical instances.

    ``generate`` comes from a generation backend (``sampling.evaluation.greedy_generator``), so evaluation
    decodes exactly as sampling does; this module stays free of model code. Contamination is measured
    against ``run_dir``'s post-training prompts, by default the run folder ``model_dir`` lies in.
    """
    start = time.monotonic()
    # 1) held-out canonical instances, the same for every model at this seed
    tasks = evaluation_tasks(n_per_family, seed, families)
    # 2) greedy answers
    responses = generate([chat.user_prompt(t.prompt) for t in tasks], max_new_tokens)
    if len(responses) != len(tasks):
        raise ValueError(f"the generator returned {len(responses)} responses for {len(tasks)} prompts")
    # 3) verify and summarise
    with ThreadPoolExecutor(VERIFY_WORKERS) as pool:
        verdicts = list(pool.map(task_world.verify, tasks, responses))
    result = summarise(tasks, responses, verdicts)
    run = Path(run_dir) if run_dir is not None else find_run(Path(model_dir))
    result.update(model=str(model_dir), seed=seed, n_per_family=n_per_family, max_new_tokens=max_new_tokens,
                  heldout=heldout_report(tasks, run), seconds=round(time.monotonic() - start, 2))
    return result


def find_run(path: Path) -> Path | None:
    """The run folder ``path`` lies in (the nearest folder with config.yaml and bootstrap/ or rounds/), or None."""
    for folder in [path, *path.resolve().parents]:
        if (folder / "config.yaml").is_file() and ((folder / "bootstrap").is_dir() or (folder / "rounds").is_dir()):
            return folder
    return None


def posttrain_files(run: Path) -> list[Path]:
    """Every post-training JSONL of a run folder: curated demonstrations, preference items, prompts, SFT data."""
    skip = [run / folder for folder in PRETRAINING_FOLDERS]
    return sorted(path for folder in POSTTRAIN_FOLDERS for path in (run / folder).rglob("*.jsonl")
                  if not any(path.is_relative_to(s) for s in skip))


def user_prompts(record: object) -> Iterator[str]:
    """The user turns of a record's ``messages`` or ``prompt`` (a string or chat messages)."""
    if not isinstance(record, dict):
        return
    for field in ("messages", "prompt"):
        value = record.get(field)
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (m["content"] for m in value if isinstance(m, dict) and m.get("role") == "user"
                        and isinstance(m.get("content"), str))


def heldout_report(tasks: list, run: Path | None) -> dict:
    """The evaluation's distinct items per family and their contamination by ``run``'s post-training prompts."""
    distinct: dict[str, set] = {}
    for task in tasks:
        distinct.setdefault(task.family, set()).add(heldout.item_key(task))
    report = {"split": "eval", "distinct_items": {f: len(keys) for f, keys in distinct.items()}}
    if run is None:
        return {**report, "contamination": {"measured": False, "reason": "the model is not inside a run folder; "
                                            "pass the run folder to measure contamination"}}
    files = posttrain_files(run)
    prompts = {p for path in files for _, record in iter_jsonl_numbered(path) for p in user_prompts(record)}
    per_family = heldout.contamination(tasks, prompts)
    return {**report, "contamination": {
        "measured": True, "run": str(run), "files": [str(p.relative_to(run)) for p in files], "prompts": len(prompts),
        "share": {f: c["share"] for f, c in per_family.items()}, "per_family": per_family}}


def summarise(tasks: list, responses: list[str], verdicts: list) -> dict:
    """Accuracy and mean closeness per family and per template, their mean, and a few examples."""
    families: dict[str, dict] = {}
    examples = []
    for task, response, verdict in zip(tasks, responses, verdicts):
        fam = families.setdefault(task.family, {"n": 0, "correct": 0, "closeness": 0.0, "templates": {}})
        tpl = fam["templates"].setdefault(task.template, {"n": 0, "correct": 0})
        for counts in (fam, tpl):
            counts["n"] += 1
            counts["correct"] += int(verdict.correct)
        fam["closeness"] += verdict.closeness
        if sum(e["family"] == task.family for e in examples) < EXAMPLES_PER_FAMILY:
            examples.append({"family": task.family, "template": task.template, "prompt": task.prompt,
                             "response": response, "reference": task.reference, "correct": verdict.correct,
                             "detail": verdict.detail})
    for fam in families.values():
        fam["accuracy"] = fam["correct"] / fam["n"]
        fam["closeness"] = round(fam["closeness"] / fam["n"], 4)
        for tpl in fam["templates"].values():
            tpl["accuracy"] = tpl["correct"] / tpl["n"]
    per_family = {name: fam["accuracy"] for name, fam in families.items()}
    mean = sum(per_family.values()) / len(per_family) if per_family else 0.0
    return {"per_family": per_family, "mean": mean, "families": families, "examples": examples}


def format_table(result: dict) -> str:
    """A plain-text table: accuracy and mean closeness per family, then the mean accuracy."""
    lines = [f"{'family':<14}{'n':>6}{'correct':>9}{'accuracy':>10}{'closeness':>11}"]
    for name, fam in result["families"].items():
        lines.append(f"{name:<14}{fam['n']:>6}{fam['correct']:>9}{fam['accuracy']:>10.1%}{fam['closeness']:>11.3f}")
    lines.append(f"{'mean':<14}{'':>6}{'':>9}{result['mean']:>10.1%}")
    return "\n".join(lines)
