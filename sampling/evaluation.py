"""`workbench eval` and the rounds' evaluations: the suites the ``eval`` section names.

``task_world``: accuracy on fresh task-world instances, answered through the same backends as
rejection sampling (:mod:`sampling.backends`: the chat template, stop tokens and decoding the policy
samples with); ``harness``: EleutherAI's lm-evaluation-harness tasks (:mod:`sampling.harness`);
``reward``: a prompt set answered greedily and scored by a reward model, with the win rate against a
baseline model (:mod:`sampling.reward_eval`). :func:`evaluate_suites` runs them for the CLI and the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sampling.backends import Backend, make_backend
from workbench.config_base import ConfigError
from workbench.evaluate import Generate, evaluate, format_table


def greedy_generator(backend: Backend, seed: int) -> Generate:
    """The evaluation's ``generate(conversations, max_new_tokens)``: one greedy answer per conversation."""
    def generate(prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
        outs = backend.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
        return [o[0].text for o in outs]

    return generate


def evaluate_model(model_dir: str | Path, eval_cfg, sampling_cfg, backend: str, *, device: str = "auto",
                   n_per_family: int | None = None, run_dir: str | Path | None = None) -> dict:
    """Task-world accuracy of ``model_dir`` (the ``eval`` section's instances) through the named backend;
    contamination measured against ``run_dir`` (default: the run folder the model lies in)."""
    scfg = dataclasses.replace(sampling_cfg, backend=backend, batch_size=eval_cfg.batch_size)
    n = eval_cfg.n_per_family if n_per_family is None else n_per_family
    with make_backend(scfg, model_dir, device=device) as b:
        return evaluate(model_dir, n, eval_cfg.seed, eval_cfg.max_new_tokens, greedy_generator(b, eval_cfg.seed),
                        run_dir=run_dir)


def evaluate_suites(cfg, model_dir: str | Path, *, reward_dir: str | Path | None = None,
                    baseline_dir: str | Path | None = None, out: str | Path | None = None,
                    backend: str | None = None, n_per_family: int | None = None,
                    run_dir: str | Path | None = None) -> dict:
    """Run ``cfg.eval.suites`` on ``model_dir``; the results, written to ``out`` (JSON) when given.

    The task world's result stays at the top level (as `workbench eval` always wrote it); ``harness`` and
    ``reward`` hold those suites' results, and ``metrics`` one flat dict of every headline number
    (``accuracy_mean``, ``harness/<task>/<metric>``, ``reward/mean_reward``, ``reward/win_rate``, ...).
    ``reward_dir`` is the reward model when ``eval.reward_model`` is ``round`` (else the config's folder
    is used unless ``reward_dir`` is given); ``baseline_dir`` the model the win rate compares with
    (``eval.baseline`` ``previous`` means the caller's previous policy; null: no comparison).
    """
    from workbench.rundir import atomic_write_json

    ecfg = cfg.eval
    ecfg.validate()
    backend = backend or cfg.rounds.generation_backend
    device = cfg.resolved_device()
    result: dict = {"suites": list(ecfg.suites)}
    metrics: dict = {}
    if "reward" in ecfg.suites:  # resolve the folders before any model loads
        reward_dir = _reward_model(ecfg, reward_dir)
        baseline_dir = _baseline(ecfg, baseline_dir)
    if "task_world" in ecfg.suites:
        world = evaluate_model(model_dir, ecfg, cfg.sampling, backend, device=device, n_per_family=n_per_family,
                               run_dir=run_dir)
        result.update(world)
        metrics["accuracy_mean"] = world["mean"]
        metrics.update({f"accuracy_{f}": a for f, a in world["per_family"].items()})
    if "harness" in ecfg.suites:
        from sampling.harness import headline, run_harness

        result["harness"] = run_harness(
            model_dir, ecfg.harness_tasks, include_path=ecfg.harness_include_path, limit=ecfg.harness_limit,
            num_fewshot=ecfg.harness_num_fewshot, batch_size=ecfg.harness_batch_size, device=device,
            apply_chat_template=ecfg.harness_chat_template, seed=ecfg.seed)
        metrics.update(headline(result["harness"]))
    if "reward" in ecfg.suites:
        from sampling.reward_eval import read_prompt_set, reward_eval

        rew = reward_eval(model_dir, read_prompt_set(ecfg.prompts), reward_dir,
                          dataclasses.replace(cfg.sampling, batch_size=ecfg.batch_size), backend=backend,
                          max_new_tokens=ecfg.max_new_tokens, seed=ecfg.seed, baseline_dir=baseline_dir,
                          tie_margin=ecfg.tie_margin, device=device, reward_device=device)
        result["reward"] = rew
        metrics.update({f"reward/{k}": rew[k] for k in ("mean_reward", "baseline_mean_reward", "win_rate",
                                                         "wins", "losses", "ties") if k in rew})
    result["metrics"] = metrics
    if out is not None:
        atomic_write_json(Path(out), result)
    return result


def round_suites(cfg, run, n: int, model_dir: str | Path, out: str | Path | None = None) -> dict:
    """:func:`evaluate_suites` for round ``n``'s policy: ``eval.reward_model: round`` is the round's reward
    model (``rounds/round_NN/reward/model``), ``eval.baseline: previous`` the previous round's policy (the
    bootstrap policy in round 1). ``run`` is the run's :class:`~workbench.rundir.RunDir`: the task world's
    contamination is measured against it, also when the model lies outside it.
    """
    reward_dir = run.round_stage(n, "reward") / "model" if cfg.eval.reward_model == "round" else None
    baseline_dir = None
    if cfg.eval.baseline == "previous":
        baseline_dir = run.round_stage(n - 1, "policy") if n > 1 else run.bootstrap
    return evaluate_suites(cfg, model_dir, reward_dir=reward_dir, baseline_dir=baseline_dir, out=out,
                           run_dir=run.root)


def _reward_model(ecfg, reward_dir) -> Path:
    """The reward model of the ``reward`` suite: ``reward_dir`` when given, else ``eval.reward_model``."""
    if reward_dir is None and ecfg.reward_model in (None, "round"):
        raise ConfigError("eval.reward_model: the reward suite needs a reward model; give its folder "
                          "(--reward DIR, or eval.reward_model) or 'round' inside the rounds")
    path = Path(reward_dir if reward_dir is not None else ecfg.reward_model)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"eval.reward_model {path}: not a model folder (no config.json)")
    return path


def _baseline(ecfg, baseline_dir) -> Path | None:
    """The win rate's baseline: ``baseline_dir`` when given, else a folder named by ``eval.baseline``, else none."""
    if baseline_dir is None and ecfg.baseline not in (None, "previous"):
        baseline_dir = ecfg.baseline
    if baseline_dir is None:
        return None
    path = Path(baseline_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"eval.baseline {path}: not a model folder (no config.json)")
    return path


def format_suites(result: dict) -> str:
    """The tables of every suite that ran."""
    from sampling import harness, reward_eval

    parts = []
    if "task_world" in result["suites"]:
        parts.append(format_table(result))
    if "harness" in result:
        parts.append(harness.format_table(result["harness"]))
    if "reward" in result:
        parts.append(reward_eval.format_table(result["reward"]))
    return "\n\n".join(parts)


def add_commands(subparsers) -> None:
    """Register `workbench eval`."""
    from workbench.cli import add_config_args

    parser = subparsers.add_parser(
        "eval", help="evaluate a model: task world, lm-evaluation-harness tasks, reward-scored prompts",
        description="Runs the suites eval.suites names (or --suites) on a model folder: task_world (greedy "
        "answers to fresh task-world instances, verified per family), harness (EleutherAI's "
        "lm-evaluation-harness tasks, eval.harness_tasks, local task folders with eval.harness_include_path) "
        "and reward (a prompt set, eval.prompts, answered greedily and scored by a reward model, with the win "
        "rate against --baseline). Prints the tables and writes JSON.")
    parser.add_argument("--model", required=True, help="model folder in Hugging Face format (with its tokenizer)")
    add_config_args(parser)
    parser.add_argument("--out", help="JSON to write (default: <run dir>/eval/<model folder name>.json)")
    parser.add_argument("--n", type=int, help="task_world: instances per family (default: eval.n_per_family)")
    parser.add_argument("--backend", choices=["vllm", "transformers"],
                        help="generation backend (default: rounds.generation_backend, as the rounds evaluate)")
    parser.add_argument("--suites", help="comma-separated suites to run instead of eval.suites "
                                         "(task_world, harness, reward)")
    parser.add_argument("--reward", help="reward: the reward model folder (default: eval.reward_model)")
    parser.add_argument("--baseline", help="reward: the model to compare with for the win rate (default: eval.baseline)")
    parser.set_defaults(func=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    """`workbench eval`: run the suites, print their tables, write the JSON atomically."""
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"--model {model_dir}: not a model folder (no config.json); "
                                "pass a folder written by the workbench or any HF causal LM")
    cfg = args.cfg
    if args.suites:
        suites = [s.strip() for s in args.suites.split(",") if s.strip()]
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, suites=suites))
        from workbench.config import SUITES

        unknown = [s for s in suites if s not in SUITES]
        if unknown:
            raise ConfigError(f"--suites: unknown suite(s) {unknown}; choose from {list(SUITES)}")
    out = Path(args.out) if args.out else cfg.run_path / "eval" / f"{model_dir.resolve().name}.json"
    result = evaluate_suites(cfg, model_dir, reward_dir=args.reward, baseline_dir=args.baseline, out=out,
                             backend=args.backend, n_per_family=args.n)
    print(format_suites(result))
    print(f"wrote {out}")
    return 0
