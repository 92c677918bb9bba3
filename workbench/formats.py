"""The user's data: prompts, preferences and SFT rows in the common formats, converted on load.

A file is a JSONL file (``*.jsonl``), a parquet file (``*.parquet``) or a folder written by
``datasets``' ``save_to_disk`` (a ``DatasetDict`` must hold one split or a ``train`` split). Its
format is detected from the first record's fields (the columns, for parquet and datasets):

prompts (``{"id", "messages", "task"}`` records, as ``sampling.rejection.read_prompts`` reads them)
    ``prompt_text``            ``{"prompt": "What is 2 + 3?"}``
    ``prompt_conversational``  ``{"prompt": [{"role": "user", "content": ...}]}`` (TRL prompt-only)
    ``messages``               ``{"messages": [...]}`` ending with a user turn
    each optionally with ``id`` (else a stable hash of the messages) and a task-world ``task``.
preferences (:class:`workbench.preferences.Preference`)
    ``workbench``              the workbench schema (a ``level`` field)
    ``trl_explicit``           TRL ``prompt``/``chosen``/``rejected``, conversational or plain strings
                               (a ``chosen`` conversation that repeats the prompt has it removed)
    ``trl_implicit``           TRL ``chosen``/``rejected`` full conversations sharing the prompt turns
    ``rated_completions``      UltraFeedback style: ``prompt`` (or ``instruction``) and ``completions``
                               ``[{"response" | "text", "score" | "overall_score" | "ratings"}]``; the
                               best-rated response is preferred to each lower-rated one (one
                               preference per pair); responses tied with the best, rows with one
                               completion or all tied give no preference and are counted.
    A preference without a level (every format but ``workbench``) gets ``default_level``.
sft (``{"messages": [...]}`` rows with an assistant turn)
    ``messages``               ``{"messages": [...]}``
    ``trl_prompt_completion``  TRL ``prompt``/``completion``, conversational or plain strings

Fields a format does not read are ignored and listed in the file's report. Every file is checked in
full before anything is returned: a bad record is reported by file and line (``path:LINE`` for
JSONL, ``path: row I`` for parquet and datasets, ``I`` as in ``dataset[I]``) with all of its problems,
and up to :data:`MAX_REPORTED` bad records are reported at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from workbench.jsonl import json_problem, message_problems, shown

KINDS = ("prompts", "preferences", "sft")
MAX_REPORTED = 20
DEFAULT_LEVEL = "better"  # a binary preference counts as "better": Llama 3's DPO keeps it, the RM weighs it fully
SCORE_FIELDS = ("score", "overall_score", "ratings")


class DataFormatError(ValueError):
    """A data file cannot be read: the message names the file, the line or row, and the fields."""


@dataclass
class Loaded:
    """One file's records and how it was read (for a stage's manifest)."""

    path: str
    container: str  # jsonl | parquet | datasets
    format: str
    records: list = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rows read, skipped and why
    ignored_fields: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """The manifest entry: path, container, detected format, counts, ignored fields."""
        return {"path": self.path, "container": self.container, "format": self.format,
                "records": len(self.records), **self.counts, "ignored_fields": self.ignored_fields}


# -- reading rows ----------------------------------------------------------------------------------

def read_rows(path: str | Path) -> tuple[str, list[tuple[str, Any]]]:
    """(container, [(where, row)]) of a JSONL file, a parquet file or a ``save_to_disk`` folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: data file not found")
    if path.is_dir():
        return "datasets", _dataset_rows(path, _load_from_disk(path))
    if path.suffix == ".parquet":
        from datasets import Dataset

        return "parquet", _dataset_rows(path, Dataset.from_parquet(str(path), keep_in_memory=True))
    if path.suffix == ".jsonl":
        from workbench.jsonl import iter_jsonl_numbered

        return "jsonl", [(f"{path}:{lineno}", row) for lineno, row in iter_jsonl_numbered(path)]
    raise DataFormatError(f"{path}: unsupported file type; expected a .jsonl file, a .parquet file "
                          "or a folder written by datasets' save_to_disk")


def _load_from_disk(path: Path):
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path}: not a folder written by datasets' save_to_disk ({exc})") from None
    if isinstance(data, DatasetDict):
        if len(data) != 1 and "train" not in data:
            raise DataFormatError(f"{path}: a DatasetDict with splits {sorted(data)}; save one split, or "
                                  "name the one to read 'train'")
        data = data["train"] if "train" in data else next(iter(data.values()))
    return data


def _dataset_rows(path: Path, data) -> list[tuple[str, Any]]:
    # Columns absent from a row come back as None; drop them so "missing" reads the same as in JSONL.
    return [(f"{path}: row {i}", _without_nones(row)) for i, row in enumerate(data.to_list())]


def _without_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value


# -- detection -------------------------------------------------------------------------------------

def detect(kind: str, keys: set[str]) -> str | None:
    """The format of ``kind`` a record with these fields is read as, or None."""
    if kind == "prompts":
        if "messages" in keys:
            return "messages"
        return "prompt" if "prompt" in keys else None  # text or conversational, told per record
    if kind == "preferences":
        if "level" in keys:
            return "workbench"
        if "completions" in keys:
            return "rated_completions"
        if {"chosen", "rejected"} & keys:  # one of them may be missing: that record's error says so
            return "trl_explicit" if "prompt" in keys else "trl_implicit"
        return None
    if kind == "sft":
        if "messages" in keys:
            return "messages"
        return "trl_prompt_completion" if {"prompt", "completion"} & keys else None
    raise ValueError(f"kind {kind!r}: expected one of {KINDS}")


EXPECTED = {
    "prompts": "'prompt' (a string or messages) or 'messages'",
    "preferences": "'level' (workbench schema), 'prompt'+'chosen'+'rejected' (TRL explicit prompt), "
                   "'chosen'+'rejected' (TRL implicit prompt) or 'completions' (rated responses)",
    "sft": "'messages' or 'prompt'+'completion' (TRL)",
}
READ_FIELDS = {
    "prompts": {"id", "prompt", "messages", "task"},
    "preferences": {"id", "prompt", "instruction", "chosen", "rejected", "completions"},
    "sft": {"messages", "prompt", "completion"},
}


# -- loading ---------------------------------------------------------------------------------------

def load(kind: str, paths: list[str | Path], *, default_level: str = DEFAULT_LEVEL) -> list[Loaded]:
    """Read and convert every file of ``kind``; raise one DataFormatError naming every bad record."""
    from workbench.preferences import LEVELS

    if default_level not in LEVELS:
        raise ValueError(f"default_level {default_level!r}: expected one of {list(LEVELS)}")
    loaded, errors = [], []
    for path in paths:
        container, rows = read_rows(path)
        first = next((row for _, row in rows if isinstance(row, dict)), None)
        fmt = detect(kind, set(first) if first else set())
        if fmt is None:
            errors.append(f"{path}: cannot tell the {kind} format from the fields "
                          f"{sorted(first) if first else '(no records)'}; expected {EXPECTED[kind]}")
            continue
        item = Loaded(str(path), container, fmt)
        ignored = set()
        for where, row in rows:
            found = [] if isinstance(row, dict) else [f"expected a JSON object, got {shown(row)}"]
            if not found and (problem := json_problem(row)):
                found.append(f"the record {problem}")
            if not found:
                if fmt != "workbench":
                    ignored |= set(row) - READ_FIELDS[kind]
                records, found = CONVERTERS[kind](fmt, row, item, default_level)
                item.records += records
            if found:
                errors.append(f"{where}: " + "; ".join(found))
        item.ignored_fields = sorted(ignored)
        loaded.append(item)
    _check_unique_ids(kind, loaded, errors)
    if errors:
        more = f"\n... and {len(errors) - MAX_REPORTED} more bad records" if len(errors) > MAX_REPORTED else ""
        raise DataFormatError("\n".join(errors[:MAX_REPORTED]) + more)
    return loaded


def records_of(loaded: list[Loaded]) -> list:
    """Every file's records, in order."""
    return [record for item in loaded for record in item.records]


def _check_unique_ids(kind: str, loaded: list[Loaded], errors: list[str]) -> None:
    """An id given twice: the same record again is dropped (and counted), another record is an error."""
    if kind == "sft":
        return
    seen: dict[str, tuple[str, Any]] = {}
    for item in loaded:
        kept = []
        for record in item.records:
            rid = record["id"] if kind == "prompts" else record.id
            content = (record["messages"], record["task"]) if kind == "prompts" else record.ranked()
            if rid not in seen:
                seen[rid] = (item.path, content)
                kept.append(record)
            elif seen[rid][1] == content:
                _count(item, "duplicates_skipped")
            else:
                errors.append(f"{item.path}: id {rid!r} is given twice (also in {seen[rid][0]}) for different "
                              "records; ids must be unique")
        item.records = kept


def _count(item: Loaded, key: str, by: int = 1) -> None:
    item.counts[key] = item.counts.get(key, 0) + by


def stable_id(prefix: str, *parts: Any) -> str:
    """``prefix-`` + 12 hex digits of a hash of ``parts`` (the same data gives the same id)."""
    digest = hashlib.sha1(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:12]}"


def _id_problems(row: dict) -> list[str]:
    rid = row.get("id")
    if rid is None or (isinstance(rid, str) and rid.strip()) or (isinstance(rid, int) and not isinstance(rid, bool)):
        return []
    return [f"field 'id' must be a non-empty string or an integer, got {shown(rid)}"]


def _text_or_messages(value: Any, name: str) -> tuple[list[dict] | None, list[str]]:
    """A string as one user message, or a message list; (messages, problems)."""
    if value is None:
        return None, [f"missing field {name!r}"]
    if isinstance(value, str):
        if not value.strip():
            return None, [f"field {name!r} must not be empty"]
        return [{"role": "user", "content": value}], []
    if not isinstance(value, list):
        return None, [f"field {name!r} must be a string or a non-empty list of {{role, content}} messages, "
                      f"got {shown(value)}"]
    found = message_problems(value, name)
    return (None if found else [{"role": m["role"], "content": m["content"]} for m in value]), found


def _prompt_messages(value: Any, name: str) -> tuple[list[dict] | None, list[str]]:
    """A prompt (a string or messages ending with a user turn)."""
    messages, found = _text_or_messages(value, name)
    if messages and messages[-1]["role"] != "user":
        return None, [f"field {name!r} must end with a user message, ends with {messages[-1]['role']!r}"]
    return messages, found


# -- prompts ---------------------------------------------------------------------------------------

def _task_problems(task: Any) -> list[str]:
    from workbench.tasks import FAMILIES, Task

    names = list(Task.__dataclass_fields__)
    if task is None:
        return []
    if (isinstance(task, dict) and set(task) <= set(names) and task.get("family") in FAMILIES
            and all(isinstance(task.get(k), str) for k in names[1:5]) and isinstance(task.get("meta", {}), dict)):
        return []
    return [f"field 'task' must be null or a task-world task {{{', '.join(names)}}} with family in "
            f"{list(FAMILIES)}, got {shown(task)}"]


def _prompt(fmt: str, row: dict, item: Loaded, default_level: str) -> tuple[list, list[str]]:
    key = "messages" if fmt == "messages" else "prompt"
    messages, found = _prompt_messages(row.get(key), key)
    if fmt == "messages" and isinstance(row.get(key), str):
        messages, found = None, [f"field 'messages' must be a non-empty list of {{role, content}} messages, "
                                 f"got {shown(row[key])}"]
    found += _id_problems(row) + _task_problems(row.get("task"))
    if fmt == "prompt" and isinstance(row.get("prompt"), list) and not found:
        item.format = "prompt_conversational" if item.format in ("prompt", "prompt_conversational") else "prompt_mixed"
    elif fmt == "prompt" and not found:
        item.format = "prompt_text" if item.format in ("prompt", "prompt_text") else "prompt_mixed"
    if found:
        return [], found
    return [{"id": str(row["id"]) if "id" in row else stable_id("p", messages), "messages": messages,
             "task": row.get("task")}], []


# -- preferences -----------------------------------------------------------------------------------

def _preference(fmt: str, row: dict, item: Loaded, default_level: str) -> tuple[list, list[str]]:
    from workbench.preferences import problems, validate

    if fmt == "workbench":
        found = problems(row)
        return ([] if found else [validate(row, item.path)]), found
    if fmt == "rated_completions":
        return _rated(row, item, default_level)
    if fmt == "trl_explicit":
        prompt, found = _prompt_messages(row.get("prompt"), "prompt")
    else:
        prompt, found = _shared_prefix(row)
    chosen, rejected = (_response(row.get(k), k, prompt) for k in ("chosen", "rejected"))
    found += _id_problems(row) + chosen[1] + rejected[1]
    if found:
        return [], found
    if chosen[0] == rejected[0]:
        _count(item, "identical_pairs_skipped")
        return [], []
    rid = str(row["id"]) if "id" in row else stable_id("pref", prompt, chosen[0], rejected[0])
    return [_user_preference(rid, prompt, chosen[0], rejected[0], default_level, item)], []


def _user_preference(rid: str, prompt: list[dict], chosen: str, rejected: str, level: str, item: Loaded,
                     **meta: Any):
    from workbench.preferences import Preference

    return Preference(id=rid, prompt=prompt, chosen=chosen, rejected=rejected, level=level,
                      annotator="user_data", meta={"source": item.path, "format": item.format, **meta})


def _response(value: Any, name: str, prompt: list[dict] | None) -> tuple[str | None, list[str]]:
    """The response text of ``chosen``/``rejected``: a string, or one assistant message after the prompt."""
    if value is None:
        return None, [f"missing field {name!r}"]
    if isinstance(value, str):
        return (value, []) if value.strip() else (None, [f"field {name!r} must not be empty"])
    found = message_problems(value, name)
    if found:
        return None, found
    if prompt and value[:len(prompt)] == prompt and len(value) > len(prompt):
        value = value[len(prompt):]  # a full conversation that repeats the prompt
    if len(value) != 1 or value[0]["role"] != "assistant" or not value[0]["content"].strip():
        return None, [f"field {name!r} must be one non-empty assistant message after the prompt, "
                      f"got {shown(value)}"]
    return value[0]["content"], []


def _shared_prefix(row: dict) -> tuple[list[dict] | None, list[str]]:
    """TRL's implicit prompt: the turns ``chosen`` and ``rejected`` share, ending with a user turn."""
    found = [problem for k in ("chosen", "rejected") for problem in message_problems(row.get(k), k)]
    if found:
        return None, found
    chosen, rejected = row["chosen"], row["rejected"]
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n == 0 or chosen[n - 1]["role"] != "user":
        return None, ["fields 'chosen' and 'rejected' must be conversations that share the prompt turns "
                      f"(ending with a user message) and then differ; they share {n} turn(s)"]
    return [{"role": m["role"], "content": m["content"]} for m in chosen[:n]], []


def _score(completion: dict) -> float | None:
    """A completion's rating: ``score``, ``overall_score``, or the mean of ``ratings`` (a list or a mapping)."""
    for key in SCORE_FIELDS:
        value = completion.get(key)
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list) and value and all(_is_number(v) for v in value):
            return sum(value) / len(value)
        if _is_number(value):
            return float(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rated(row: dict, item: Loaded, default_level: str) -> tuple[list, list[str]]:
    key = "prompt" if "prompt" in row else "instruction"
    prompt, found = _prompt_messages(row.get(key), key)
    found += _id_problems(row)
    completions = row.get("completions")
    rated = []
    if not isinstance(completions, list) or not completions:
        found.append(f"field 'completions' must be a non-empty list of {{response, score}}, got {shown(completions)}")
        completions = []
    for i, c in enumerate(completions):
        text = c.get("response", c.get("text")) if isinstance(c, dict) else None
        score = _score(c) if isinstance(c, dict) else None
        if not isinstance(text, str) or not text.strip():
            found.append(f"completions[{i}].response (or .text) must be a non-empty string, got {shown(text)}")
        if score is None:
            found.append(f"completions[{i}] needs a number in one of {list(SCORE_FIELDS)} (ratings: a list or "
                         f"mapping of numbers), got {shown(c)}")
        rated.append((score, text))
    if found:
        return [], found
    _count(item, "rated_rows")
    best_score, best = max(rated, key=lambda pair: pair[0])  # the first of the best on ties
    if len(rated) == 1:
        _count(item, "single_completion_rows")
    worse = [(s, t) for s, t in rated if s < best_score and t != best]
    _count(item, "tied_with_best_skipped", sum(s == best_score for s, _ in rated) - 1)
    if len(rated) > 1 and not worse:
        _count(item, "all_tied_rows")
    rid = str(row["id"]) if "id" in row else stable_id("pref", prompt, [t for _, t in rated])
    return [_user_preference(f"{rid}-{k}", prompt, best, text, default_level, item, scores=[best_score, score])
            for k, (score, text) in enumerate(worse)], []


# -- sft -------------------------------------------------------------------------------------------

def _sft(fmt: str, row: dict, item: Loaded, default_level: str) -> tuple[list, list[str]]:
    from workbench.posttrain.sft import check_row

    if fmt == "trl_prompt_completion":
        prompt, found = _prompt_messages(row.get("prompt"), "prompt")
        completion = row.get("completion")
        if isinstance(completion, str) and completion.strip():
            completion = [{"role": "assistant", "content": completion}]
        found += message_problems(completion, "completion")
        if found:
            return [], found
        row = {"messages": prompt + completion}
    try:
        return [check_row(row, "")], []
    except ValueError as exc:
        return [], [str(exc).removeprefix(": ")]


CONVERTERS = {"prompts": _prompt, "preferences": _preference, "sft": _sft}


# -- exports ---------------------------------------------------------------------------------------

def trl_preference_rows(preferences) -> list[dict]:
    """TRL's conversational explicit-prompt rows (prompt/chosen/rejected, plus id and level) of preferences.

    The pairs are the ones the workbench's DPO trains on, at every level: the best response over
    each other one (an edit gives edited > chosen and edited > rejected; an edit equal to the chosen
    response counts as none). Filter on ``level`` to keep, e.g., Llama 3's strong pairs.
    """
    rows = []
    for pref in preferences:
        best, *others = pref.ranked()
        if best.strip() == pref.chosen.strip():
            best, others = pref.chosen, [pref.rejected]
        rows += [{"prompt": pref.prompt, "chosen": [{"role": "assistant", "content": best}],
                  "rejected": [{"role": "assistant", "content": worse}], "id": pref.id, "level": pref.level}
                 for worse in others]
    return rows


def iter_kind_records(kind: str, loaded: list[Loaded]) -> Iterator[dict]:
    """Every record as a JSON-able dict (preferences in the workbench schema)."""
    for record in records_of(loaded):
        yield record.to_dict() if kind == "preferences" else record
