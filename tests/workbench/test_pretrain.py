"""Pretraining components: packing, the data stream, schedules, snapshots, config."""

import numpy as np
import pytest
import torch

from workbench.config_base import ConfigError, build
from workbench.masking import attention_inputs
from workbench.modeling import create_model
from workbench.pretrain.checkpoint import average_snapshots, save_snapshot
from workbench.pretrain.config import PretrainConfig
from workbench.pretrain.packing import IGNORE, Corpus, TokenStream, next_batch, pack_windows
from workbench.pretrain.schedule import anneal_snapshot_steps, learning_rate, ramp, total_steps


def toy_corpus(n_docs=20, seed=0) -> Corpus:
    rng = np.random.default_rng(seed)
    docs = [np.array([1, *rng.integers(10, 300, size=rng.integers(3, 40)), 2]) for _ in range(n_docs)]
    return Corpus(docs, np.arange(n_docs) % 3, ("a", "b", "c"))


def row(*docs):
    """One window (T + 1 tokens) holding ``docs`` back to back, each with its own document id."""
    tokens = np.concatenate(docs)
    doc_ids = np.concatenate([np.full(len(d), i) for i, d in enumerate(docs)])
    return tokens, doc_ids, np.zeros_like(doc_ids)


def logits_of(model, batch):
    return model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                 **attention_inputs(model, batch.segment_ids)).logits


def test_changing_one_document_never_changes_the_logits_of_another(tiny_tokenizer):
    model = create_model("tiny", tiny_tokenizer, seed=0).eval()
    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(10, 300, size=n) for n in (11, 17, 9))
    a2 = rng.integers(10, 300, size=11)
    with torch.no_grad():
        base = logits_of(model, pack_windows([row(a, b, c)]))[0]
        changed = logits_of(model, pack_windows([row(a2, b, c)]))[0]
        alone = logits_of(model, pack_windows([row(b, c)]))[0]
    assert (base[:11] - changed[:11]).abs().max() > 1e-2  # the changed document itself did change
    assert torch.allclose(base[11:], changed[11:], atol=1e-5)  # documents b and c did not
    assert torch.allclose(base[11:], alone, atol=1e-5)  # b packed after a equals b alone


def test_targets_never_cross_a_document_boundary_and_positions_restart():
    stream = TokenStream(toy_corpus(), seed=0)
    batch = next_batch([stream], [1.0], batch_size=4, seq_len=64, rng=np.random.default_rng(0))
    inputs, targets, seg, pos = batch.input_ids, batch.targets, batch.segment_ids, batch.position_ids
    assert (pos[:, 0] == 0).all()
    starts = torch.ones_like(seg, dtype=torch.bool)
    starts[:, 1:] = seg[:, 1:] != seg[:, :-1]
    assert (pos[starts] == 0).all() and (pos[~starts] > 0).all()
    inner = seg[:, 1:] == seg[:, :-1]  # the next column is the same document
    assert (targets[:, :-1][inner] == inputs[:, 1:][inner]).all()
    assert (targets[:, :-1][~inner] == IGNORE).all()
    assert (targets[inputs == 2] == IGNORE).all()  # nothing is predicted after a document's EOS (id 2)


def test_stream_visits_every_document_once_per_epoch_and_resumes_from_its_cursor():
    corpus = toy_corpus()
    stream = TokenStream(corpus, seed=3)
    tokens, doc_ids, _ = stream.read(0, stream.epoch_len)
    assert sorted(tokens.tolist()) == sorted(np.concatenate(corpus.documents).tolist())
    assert len(np.unique(doc_ids)) == len(corpus.documents)
    windows = [stream.next_window(50) for _ in range(30)]  # crosses several epochs
    resumed = TokenStream(corpus, seed=3)
    resumed.cursor = 20 * 50
    for expected in windows[20:]:
        assert all((x == y).all() for x, y in zip(expected, resumed.next_window(50)))


def test_schedule_warms_up_decays_by_cosine_and_anneals_to_zero():
    cfg = PretrainConfig(max_steps=100, warmup_steps=10, learning_rate=1e-3, min_lr_ratio=0.1, anneal_steps=20)
    lrs = [learning_rate(cfg, s) for s in range(total_steps(cfg))]
    assert all(x < y for x, y in zip(lrs[:10], lrs[1:11]))  # linear warm-up to the peak
    assert lrs[10] == pytest.approx(1e-3)
    assert all(x >= y for x, y in zip(lrs[10:100], lrs[11:100]))  # cosine decay
    assert lrs[99] == pytest.approx(1e-4, rel=1e-2)
    anneal = lrs[100:]
    assert anneal[0] <= lrs[99] and anneal[-1] > 0
    assert np.allclose(np.diff(anneal), anneal[1] - anneal[0])  # linear
    assert learning_rate(cfg, total_steps(cfg)) == pytest.approx(0.0)  # reaches 0 after the last step


def test_ramp_and_snapshot_steps():
    cfg = PretrainConfig(max_steps=100, anneal_steps=20, anneal_average=4, ramp=[[0, 64, 8], [50, 128, 16]])
    assert ramp(cfg, 0) == (64, 8) and ramp(cfg, 49) == (64, 8) and ramp(cfg, 50) == (128, 16)
    steps = anneal_snapshot_steps(cfg)
    assert len(steps) == 4 and steps[-1] == 119 and steps[0] >= 100


def test_average_of_snapshots_is_the_mean(tmp_path, tiny_tokenizer):
    models = [create_model("tiny", tiny_tokenizer, seed=s) for s in (0, 1)]
    paths = [save_snapshot(tmp_path, s, m) for s, m in enumerate(models)]
    mean = average_snapshots(paths)
    name = "model.layers.0.mlp.up_proj.weight"
    expected = (models[0].state_dict()[name] + models[1].state_dict()[name]) / 2
    assert torch.allclose(mean[name], expected)


@pytest.mark.parametrize("fields, message", [
    ({"ramp": [[5, 64, 8]]}, "ramp"),
    ({"anneal_average": 9, "anneal_steps": 4}, "anneal_average"),
    ({"warmup_steps": 500, "max_steps": 100}, "warmup_steps"),
])
def test_bad_config_names_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        build(PretrainConfig, fields, "x.yaml: pretrain")
