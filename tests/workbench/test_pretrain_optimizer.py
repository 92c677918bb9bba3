"""Pretraining's AdamW decays weight matrices only: not norms, biases or the token embedding, tied or not."""

from types import SimpleNamespace

import pytest
import torch

from workbench.modeling import create_model
from workbench.pretrain.train import make_optimizer

CFG = SimpleNamespace(weight_decay=0.1, learning_rate=0.5, adam_beta1=0.9, adam_beta2=0.95)


def groups_by_name(model, optimizer) -> tuple[set[str], set[str]]:
    """(names of decayed parameters, names of the others), a tied tensor under its first name."""
    names = {id(p): n for n, p in model.named_parameters()}
    decayed, kept = ({names[id(p)] for p in g["params"]} for g in optimizer.param_groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [CFG.weight_decay, 0.0]
    return decayed, kept


@pytest.mark.parametrize("tied", [True, False])
def test_param_groups_leave_out_norms_and_the_embedding(tiny_tokenizer, tied):
    model = create_model("tiny", tiny_tokenizer, tie_word_embeddings=tied)
    decayed, kept = groups_by_name(model, make_optimizer(model, CFG))
    assert decayed.isdisjoint(kept) and decayed | kept == {n for n, _ in model.named_parameters()}
    assert "model.embed_tokens.weight" in kept
    assert all("norm" in n for n in kept - {"model.embed_tokens.weight"})
    assert all(n.endswith("_proj.weight") for n in decayed - {"lm_head.weight"})
    assert ("lm_head.weight" in decayed) == (not tied)  # a separate output head is a matrix like any other
    assert len(decayed) == 7 * model.config.num_hidden_layers + (not tied)  # q, k, v, o, gate, up, down


def test_a_step_without_gradient_shrinks_only_the_decayed_matrices(tiny_tokenizer):
    model = create_model("tiny", tiny_tokenizer, tie_word_embeddings=True)
    optimizer = make_optimizer(model, CFG)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # Adam's update is 0 for a zero gradient; only the decoupled decay moves weights
    params = dict(model.named_parameters())
    shrink = 1 - CFG.learning_rate * CFG.weight_decay
    torch.testing.assert_close(params["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    assert model.lm_head.weight is params["model.embed_tokens.weight"]
    torch.testing.assert_close(params["model.norm.weight"], before["model.norm.weight"])
    proj = "model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(params[proj], before[proj] * shrink)
