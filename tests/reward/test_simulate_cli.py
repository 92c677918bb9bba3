"""`workbench reward simulate`: schema-valid preference JSONL, every level, seeded, no silent overwrite."""

from rounds.main import main
from workbench.preferences import LEVELS, read_jsonl


def simulate(path, *extra):
    return main(["reward", "simulate", "--n", "60", "--seed", "3", "--out", str(path), *extra])


def test_simulate_writes_valid_preferences_with_every_level(tmp_path, capsys):
    path = tmp_path / "sub" / "prefs.jsonl"
    assert simulate(path) == 0
    records = read_jsonl(path)  # the schema validator: raises on any malformed record
    assert len(records) == 60 and len({r.id for r in records}) == 60
    assert {r.level for r in records} == set(LEVELS)
    assert any(r.edited for r in records)
    assert all(r.annotator == "reward.synthetic" and r.meta["task"] for r in records)
    assert "60 preferences" in capsys.readouterr().out
    assert not [p for p in path.parent.iterdir() if p.name != "prefs.jsonl"]  # no temp file left behind


def test_simulate_is_deterministic_per_seed_and_edit_fraction_zero_has_no_edits(tmp_path):
    assert simulate(tmp_path / "a.jsonl") == 0 and simulate(tmp_path / "b.jsonl") == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert main(["reward", "simulate", "--n", "60", "--seed", "4", "--out", str(tmp_path / "c.jsonl")]) == 0
    assert (tmp_path / "c.jsonl").read_bytes() != (tmp_path / "a.jsonl").read_bytes()
    assert simulate(tmp_path / "d.jsonl", "--edit-fraction", "0") == 0
    assert not any(r.edited for r in read_jsonl(tmp_path / "d.jsonl"))


def test_simulate_refuses_to_overwrite_unless_forced(tmp_path, capsys):
    path = tmp_path / "prefs.jsonl"
    path.write_text("keep me\n")
    assert simulate(path) == 2
    assert "--force" in capsys.readouterr().err and path.read_text() == "keep me\n"
    assert simulate(path, "--force") == 0
    assert len(read_jsonl(path)) == 60


def test_simulate_draws_items_from_the_chosen_side_of_the_held_out_split(tmp_path):
    from workbench.tasks.heldout import prompt_keys, side

    def sides(path):
        return {side(key) for r in read_jsonl(path) for key in prompt_keys(r.prompt[-1]["content"])}

    assert simulate(tmp_path / "train.jsonl") == 0 and sides(tmp_path / "train.jsonl") == {"posttrain"}
    assert simulate(tmp_path / "held.jsonl", "--split", "eval", "--edit-fraction", "0") == 0
    assert sides(tmp_path / "held.jsonl") == {"eval"}
