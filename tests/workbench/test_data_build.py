"""The full small data build: output contract, required numbers, skip/force, atomic failure, CLI."""

import json

import pytest

from rounds.full_config import CONFIG_DIR, load_config
from workbench.data import build_data, corpus_texts
from workbench.data.config import DOMAINS
from workbench.rundir import RunDir, read_manifest


def _config(run_dir, *more):
    return load_config(CONFIG_DIR / "smoke.yaml", [f"run_dir={run_dir}", "data.num_documents=400", *more])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = _config(run_dir)
    return cfg, RunDir(run_dir), build_data(cfg, RunDir(run_dir))


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_build_writes_the_output_contract(built):
    _, run, data = built
    assert data == run.data
    for name in ("train.jsonl", "heldout.jsonl", "anneal.jsonl", "report.json", "report.md", "manifest.json"):
        assert (data / name).is_file(), name
    for split in ("train", "heldout", "anneal"):
        docs = _read(data / f"{split}.jsonl")
        assert docs, split
        for doc in docs:
            assert set(doc) == {"id", "text", "domain", "url", "quality"}
            assert doc["domain"] in DOMAINS and doc["text"] and doc["url"].startswith("https://")
            assert doc["quality"] is None or 0.0 <= doc["quality"] <= 1.0
    manifest = read_manifest(data)
    assert manifest["status"] == "done" and manifest["metrics"]["passed"] is True
    assert manifest["outputs"]["train"] == "train.jsonl"


def test_heldout_and_anneal_relate_to_train_as_promised(built):
    _, _, data = built
    train = _read(data / "train.jsonl")
    heldout = _read(data / "heldout.jsonl")
    anneal = _read(data / "anneal.jsonl")
    train_texts = {d["text"] for d in train}
    assert not train_texts & {d["text"] for d in heldout}
    assert {d["domain"] for d in heldout} == set(DOMAINS)
    assert {d["id"] for d in anneal} <= {d["id"] for d in train}
    assert min(d["quality"] for d in anneal) >= sorted(d["quality"] for d in train)[len(train) // 2]
    assert list(corpus_texts(data)) == [d["text"] for d in train]


def test_build_meets_the_required_numbers(built):
    _, _, data = built
    report = json.loads((data / "report.json").read_text())
    assert report["recall"]["near_dup"] >= 0.9
    assert report["recall"]["low_quality"] >= 0.9
    assert report["clean_removed"]["fraction"] <= 0.02
    assert report["mix"]["max_abs_dev"] <= 0.02
    stages = [row["stage"] for row in report["stages"]]
    assert stages == ["url_dedup", "minhash_dedup", "line_dedup", "heuristic_filters", "quality_classifier",
                      "domain_classifier"]
    assert report["recall"]["old_version"] >= 0.9 and report["recall"]["exact_dup"] >= 0.9
    assert report["line_dedup"]["recall"] >= 0.8 and report["line_dedup"]["precision"] >= 0.8
    planted = {d["id"]: d["label"] for d in _read(data / "planted.jsonl")}
    train_labels = [planted[d["id"]] for d in _read(data / "train.jsonl")]
    assert train_labels.count("clean") >= 0.98 * len(train_labels)
    assert report["train_by_label"]["clean"] == train_labels.count("clean")
    assert "Required" in (data / "report.md").read_text()


def test_a_done_build_is_skipped_unless_forced(built, monkeypatch):
    cfg, run, data = built
    import workbench.data.build as build_module

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt although done")

    monkeypatch.setattr(build_module, "make_corpus", boom)
    assert build_data(cfg, run) == data
    from rounds.main import main

    assert main(["data", "build", "--config", str(CONFIG_DIR / "smoke.yaml"), "--run-dir", str(run.root)]) == 0


def test_an_interrupted_build_leaves_no_data_and_no_done_manifest(tmp_path, monkeypatch):
    import workbench.data.build as build_module

    def crash(result, folder):
        (folder / "train.jsonl").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "write_corpus", crash)
    cfg = _config(tmp_path, "data.num_documents=40", "data.classifier_seed_docs=40")
    run = RunDir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        build_data(cfg, run)
    assert not (run.data / "train.jsonl").exists()
    assert read_manifest(run.data)["status"] == "failed"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
