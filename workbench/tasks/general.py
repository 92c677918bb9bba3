"""The general family: small word manipulations (reverse, sort, count a letter, capitalise)."""

from __future__ import annotations

import random

from workbench.tasks import Task
from workbench.tasks.answers import answer_line
from workbench.tasks.multilingual import LEXICON
from workbench.tasks.phrasing import choose

WORDS = tuple(sorted(LEXICON))
LETTER_WORDS = ("banana", "strawberry", "mississippi", "committee", "balloon", "letter", "bookkeeper",
                "coffee", "pepper", "assessment", "parallel", "tomorrow", "necessary", "address", "success",
                "millennium", "occurrence", "possession", "referee", "giraffe", "hippopotamus", "rhythm",
                "umbrella", "volleyball", "yellow", "kangaroo", "elephant", "accommodation", "cinnamon",
                "broccoli", "afternoon", "engineer", "grammar", "window", "puzzle", "teapot", "butterfly",
                "dinosaur", "pineapple", "chocolate")
UPPER_WORDS = tuple(sorted(set(WORDS) | set(LETTER_WORDS)))  # a larger item space for capitals
ALPHABET = "abcdefghijklmnopqrstuvwxyz"

PHRASINGS = {
    "general.reverse": ("Reverse the order of these words: {words}", "Reverse these words: {words}",
                        "Write these words in reverse order: {words}"),
    "general.sort": ("Sort these words alphabetically: {words}", "Put these words in alphabetical order: {words}",
                     "Alphabetize: {words}"),
    "general.count_letter": ("How many times does the letter {c} appear in {word}?",
                             "Count the letter {c} in {word}.", "How often does {c} occur in the word {word}?"),
    "general.upper": ("Write the word {word} in capital letters.", "Write {word} in upper case.",
                      "Capitalize every letter of {word}."),
}


def three_words(rng: random.Random, unsorted: bool) -> list[str]:
    """Three distinct words; with ``unsorted``, never already in alphabetical order."""
    while True:
        words = rng.sample(WORDS, 3)
        if not unsorted or words != sorted(words):
            return words


def make(template: str, rng: random.Random, canonical_only: bool = False) -> Task:
    """One instance of a general template."""
    words = three_words(rng, unsorted=template == "general.sort")
    word = rng.choice({"general.count_letter": LETTER_WORDS, "general.upper": UPPER_WORDS}.get(template, WORDS))
    absent = [c for c in ALPHABET if c not in word]
    c = rng.choice(word) if rng.random() < 0.75 else rng.choice(absent)
    fmt, flags = choose(rng, PHRASINGS[template], canonical_only)
    reference, reasoning, meta = _answer(template, words, word, c)
    prompt = fmt.format(words=" ".join(words), word=word, c=c)
    solution = "\n".join(filter(None, [reasoning, answer_line(reference)]))
    return Task("general", template, prompt, reference, solution, {**meta, **flags})


def _answer(template: str, words: list[str], word: str, c: str) -> tuple[str, str, dict]:
    """Reference answer, an optional reasoning line, and the template's meta fields."""
    if template == "general.reverse":
        return " ".join(reversed(words)), "", {"words": words}
    if template == "general.sort":
        return " ".join(sorted(words)), "", {"words": words}
    if template == "general.count_letter":
        return str(word.count(c)), " ".join(word), {"word": word, "letter": c}
    return word.upper(), "", {"word": word}


def corrupt(task: Task, rng: random.Random) -> str:
    """A wrong answer people make: order unchanged or half done, a count off by one, partial capitals."""
    meta, ref = task.meta, task.reference
    if task.template in ("general.reverse", "general.sort"):
        words = meta["words"]
        candidates = [" ".join(words), " ".join(sorted(words, reverse=True)), " ".join(words[1:] + words[:1])]
    elif task.template == "general.count_letter":
        count = int(ref)
        return answer_line(rng.choice([n for n in (count - 1, count + 1, count + 2) if n >= 0]))
    else:
        word = meta["word"]
        candidates = [word, word.capitalize(), word.upper()[:-1], word[:-1].upper() + word[-1]]
    return answer_line(rng.choice([c for c in candidates if c != ref]))


TEMPLATES = {name: make for name in PHRASINGS}
