"""The experts' data checks on generated samples: what each check removes, and what self-correction recovers.

    .venv/bin/python benchmarks/experts_bench.py                        # corrupted references (no model)
    .venv/bin/python benchmarks/experts_bench.py --model runs/demo/experts/code --n 100

Without ``--model`` the samples are the task world's corruptions mixed with reference solutions
(``--wrong`` of them corrupted), math traces also get right-by-accident variants (a wrong step, the
right answer), and code self-correction is answered by a scripted corrector that fixes a sample
with probability ``--fix``. With ``--model`` the model answers greedily and corrects itself.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def scripted_samples(domain: str, n: int, wrong: float, seed: int):
    """Tasks of ``domain`` and responses: references, corruptions, and (math) right-by-accident traces."""
    from workbench import tasks

    rng = random.Random(seed)
    chosen = tasks.generate(domain, n, seed)
    responses = []
    for task in chosen:
        if rng.random() >= wrong:
            responses.append(task.solution)
        elif domain == "math" and rng.random() < 0.3:
            a, b, op = task.meta["a"], task.meta["b"], task.meta["op"]
            responses.append(f"{a} {op} {b} = {int(task.reference) + 1}\nAnswer: {task.reference}")
        else:
            responses.append(tasks.corrupt(task, rng))
    return chosen, responses


def scripted_corrector(chosen, fix: float, seed: int):
    """A ``generate`` that answers a correction prompt with the reference with probability ``fix``."""
    from workbench.tasks.code_tasks import fenced, program

    by_prompt = {t.prompt: t for t in chosen}
    rng = random.Random(seed)

    def generate(conversations):
        out = []
        for conv in conversations:
            task = by_prompt[conv[0]["content"]]
            out.append(task.solution if rng.random() < fix else fenced(program(task.reference, "xs")))
        return out

    return generate


def model_samples(model_dir: str, domain: str, n: int, seed: int, max_new_tokens: int):
    """Greedy answers of a model, and a ``generate`` on the same model for self-correction."""
    from sampling.backends import TransformersBackend
    from sampling.evaluation import greedy_generator
    from workbench import tasks
    from workbench.chat import user_prompt

    chosen = tasks.generate(domain, n, seed, canonical_only=True)
    generate_n = greedy_generator(TransformersBackend(model_dir, device="cpu"), seed)
    responses = generate_n([user_prompt(t.prompt) for t in chosen], max_new_tokens)
    return chosen, responses, lambda conversations: generate_n(conversations, max_new_tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model folder to sample from (default: scripted samples)")
    parser.add_argument("--domains", nargs="*", default=["code", "math", "multilingual"])
    parser.add_argument("--n", type=int, default=200, help="samples per domain")
    parser.add_argument("--wrong", type=float, default=0.4, help="scripted: share of corrupted samples")
    parser.add_argument("--fix", type=float, default=0.7, help="scripted: chance a correction fixes the code")
    parser.add_argument("--max-corrections", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from experts.checks import check_samples

    report = {}
    for domain in args.domains:
        start = time.monotonic()
        if args.model:
            chosen, responses, generate = model_samples(args.model, domain, args.n, args.seed, args.max_new_tokens)
        else:
            chosen, responses = scripted_samples(domain, args.n, args.wrong, args.seed)
            generate = scripted_corrector(chosen, args.fix, args.seed)
        _, summary = check_samples(domain, chosen, responses, generate=generate,
                                   max_corrections=args.max_corrections)
        report[domain] = {**summary, "seconds": round(time.monotonic() - start, 2)}
        print(f"{domain:<13} " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in report[domain].items()))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
