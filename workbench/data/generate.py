"""The clean corpus: documents written from the task world (TASKS.md) in four domains.

A document is a title line plus blocks appended until it reaches a drawn length. Blocks carry the
task-world formats the base model must learn (a prompt, then reasoning lines and ``Answer: X``; a
prompt, then a fenced ``python`` block), worked solutions, code files with assert-based tests,
number-word tables and sentences in French, Spanish and German, word facts and short prose.
Every document gets a synthetic URL; its domain is ground truth kept beside it, never in the text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from workbench.data.config import DOMAINS
from workbench.data.corpus import Doc
from workbench.tasks import Task, generate

SITES = {
    "general": ("words.example", "stories.example", "puzzles.example"),
    "math": ("math.example", "arithmetic.example"),
    "code": ("code.example", "snippets.example"),
    "multilingual": ("lang.example", "lexicon.example"),
}
LANGS = ("French", "Spanish", "German")

ANIMALS = "cat dog horse bird fish cow sheep goat fox wolf bear mouse rabbit duck owl frog lion tiger".split()
COLOURS = "red blue green black white yellow brown grey orange pink purple".split()
PLACES = "garden river forest kitchen market field village hill school bridge harbour station".split()
VERBS = "sat near|ran to|walked past|slept by|looked at|waited at|jumped over|hid behind".split("|")
NAMES = "Ana Ben Carla Dev Eli Fatima Gus Hana Ivan Jon Kira Leo Mia Noor Omar Pia Raj Sara Tom Uma".split()
TIMES = "In the morning|At noon|In the evening|Later that day|On Sunday|Last week|Every day".split("|")


@dataclass
class GeneratedDoc:
    """A clean document and its ground-truth domain."""

    doc: Doc
    domain: str


class TaskStream:
    """Endless tasks of one family, drawn from the task world in seeded batches."""

    def __init__(self, family: str, seed: int, batch: int = 512):
        self.family, self.seed, self.batch = family, seed, batch
        self._buffer: list[Task] = []
        self._round = 0

    def __iter__(self) -> Iterator[Task]:
        return self

    def __next__(self) -> Task:
        if not self._buffer:
            self._buffer = list(generate(self.family, self.batch, self.seed * 1000 + self._round, split="all"))[::-1]
            self._round += 1
        return self._buffer.pop()


def code_of(solution: str) -> str:
    """The body of the first fenced code block of a response (the response itself if none)."""
    m = re.search(r"```(?:python)?\n(.*?)```", solution, re.S)
    return (m.group(1) if m else solution).strip("\n")


def _qa(task: Task) -> str:
    return f"Question: {task.prompt}\n{task.solution.strip()}"


def _worked(task: Task, rng: random.Random) -> str:
    return f"Problem {rng.randint(1, 99)}. {task.prompt}\nSolution:\n{task.solution.strip()}"


def code_file(task: Task, rng: random.Random) -> str:
    """A module defining the task's function, with tests computed by running the reference."""
    code, fname = code_of(task.solution), task.reference
    namespace: dict = {}
    try:
        exec(compile(code, f"<{fname}>", "exec"), namespace)  # the task world's own reference code
        func = namespace[fname]
        cases = [[rng.randint(-9, 20) for _ in range(rng.randint(1, 5))] for _ in range(rng.randint(2, 4))]
        asserts = [f"    assert {fname}({xs!r}) == {func(list(xs))!r}" for xs in cases]
    except Exception:  # a reference that does not run still makes a valid code document
        asserts = []
    tests = f"\n\n\ndef test_{fname}():\n" + "\n".join(asserts) if asserts else ""
    return f"# {fname}.py: {task.prompt.rstrip('.')}\n{code}{tests}\n"


def _in_language(tasks: Iterator[Task], lang: str, numbers: bool | None = None, tries: int = 200) -> Task | None:
    """The next task in ``lang`` (and of the number template when ``numbers`` is set)."""
    for _ in range(tries):
        t = next(tasks)
        if t.meta.get("lang") == lang and (numbers is None or ("n" in t.meta) == numbers):
            return t
    return None


def _number_table(tasks: Iterator[Task], lang: str, rng: random.Random) -> str:
    found = [t for t in (_in_language(tasks, lang, True) for _ in range(rng.randint(6, 12))) if t]
    rows = [f"{t.meta['n']} {t.reference}" for t in found]
    return f"Numbers in {lang}, table {rng.randint(1, 999)}:\n" + "\n".join(
        ", ".join(rows[i:i + 3]) for i in range(0, len(rows), 3))


def _language_sentence(task: Task) -> str:
    lang, ref = task.meta.get("lang"), task.reference
    if "n" in task.meta:
        n = task.meta["n"]
        return {"French": f"Le nombre {n} s'écrit {ref}.", "Spanish": f"El número {n} se escribe {ref}.",
                "German": f"Die Zahl {n} schreibt man {ref}."}.get(lang, _qa(task))
    word = task.meta.get("word")
    return {"French": f"Le mot anglais {word} se dit {ref} en français.",
            "Spanish": f"La palabra inglesa {word} se dice {ref} en español.",
            "German": f"Das englische Wort {word} heißt auf Deutsch {ref}."}.get(lang, _qa(task))


def _word_facts(rng: random.Random) -> str:
    word = rng.choice(ANIMALS + COLOURS + PLACES)
    c = rng.choice(word)
    return (f"The word {word} has {len(word)} letters. It starts with {word[0]} and ends with {word[-1]}. "
            f"The letter {c} appears {word.count(c)} times in {word}. In capital letters it is {word.upper()}.")


def _story(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    sentences = [f"{rng.choice(TIMES)}, the {rng.choice(COLOURS)} {rng.choice(ANIMALS)} "
                 f"{rng.choice(VERBS)} the {rng.choice(PLACES)}." for _ in range(rng.randint(2, 4))]
    return f"{name} told a story. " + " ".join(sentences) + f" {name} counted {rng.randint(2, 40)} of them."


def _blocks(domain: str, streams: dict[str, TaskStream], rng: random.Random) -> Callable[[], str]:
    """A function returning the next block of text of a document in ``domain``."""
    tasks = streams[domain]  # each domain draws from the task family of the same name
    if domain == "math":
        return lambda: _qa(next(tasks)) if rng.random() < 0.5 else _worked(next(tasks), rng)
    if domain == "code":
        return lambda: code_file(next(tasks), rng) if rng.random() < 0.6 else _qa(next(tasks))

    if domain == "multilingual":
        lang = rng.choice(LANGS)  # one language per document

        def block() -> str:
            r = rng.random()
            if r < 0.2:
                return _number_table(tasks, lang, rng)
            if r < 0.4:
                found = [t for t in (_in_language(tasks, lang) for _ in range(rng.randint(2, 4))) if t]
                return " ".join(_language_sentence(t) for t in found)
            return _qa(_in_language(tasks, lang) or next(tasks))
        return block

    def general() -> str:
        r = rng.random()
        return _qa(next(tasks)) if r < 0.75 else _word_facts(rng) if r < 0.9 else _story(rng)
    return general


TITLES = {
    "general": ("Word puzzles", "Notes", "Stories and words", "Reading practice"),
    "math": ("Arithmetic practice", "Worked examples", "Math exercises"),
    "code": ("Python snippets", "Small functions", "Code kata"),
    "multilingual": ("Language notes", "Vocabulary", "Numbers and words"),
}


def write_document(domain: str, streams: dict[str, TaskStream], rng: random.Random,
                   min_chars: int, max_chars: int) -> str:
    """One document: a numbered title, then blocks until the drawn length is reached."""
    target = rng.randint(min_chars, max_chars)
    next_block = _blocks(domain, streams, rng)
    parts = [f"{rng.choice(TITLES[domain])} {rng.randint(1, 9999)}"]
    size = len(parts[0])
    for _ in range(100):
        if size >= target:
            break
        block = next_block()
        if block in parts:  # the task world's small pools repeat; a page states a thing once
            continue
        if size + len(block) > max_chars and len(parts) > 1:
            break
        parts.append(block)
        size += len(block) + 2
    return "\n\n".join(parts)


def domain_counts(n: int, mix: dict[str, float]) -> dict[str, int]:
    """n split over the domains in proportion to ``mix`` (largest remainders)."""
    raw = {d: n * mix[d] for d in DOMAINS}
    counts = {d: int(v) for d, v in raw.items()}
    for d in sorted(DOMAINS, key=lambda d: raw[d] - counts[d], reverse=True)[: n - sum(counts.values())]:
        counts[d] += 1
    return counts


def generate_documents(counts: dict[str, int], seed: int, min_chars: int = 300, max_chars: int = 1200,
                       prefix: str = "doc") -> list[GeneratedDoc]:
    """Clean documents, ``counts[domain]`` per domain, with URLs ``https://<site>/<prefix>/<k>``."""
    rng = random.Random(seed)
    streams = {d: TaskStream(d, seed * 10 + i) for i, d in enumerate(DOMAINS)}
    out = []
    for domain in DOMAINS:
        for _ in range(counts.get(domain, 0)):
            k = len(out)
            url = f"https://{rng.choice(SITES[domain])}/{prefix}/{k}"
            text = write_document(domain, streams, rng, min_chars, max_chars)
            out.append(GeneratedDoc(Doc(id=f"{prefix}-{k}", text=text, url=url, timestamp=""), domain))
    return out
