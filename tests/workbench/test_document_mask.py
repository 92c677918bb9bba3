"""Document masking: under every attention implementation available here, a packed segment equals itself alone."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.masking import attention_inputs, document_mask
from workbench.modeling import create_model
from workbench.pretrain.packing import IGNORE, pack_windows
from workbench.pretrain.train import forward_losses

# flash-attention does not install on this CPU machine; flex_attention has no backward on the CPU.
IMPLEMENTATIONS = ("eager", "sdpa")


def tiny_model(tokenizer, implementation: str):
    """The tiny workbench model, freshly initialised, under ``implementation``."""
    model = create_model("tiny", tokenizer, seed=0)
    model.set_attn_implementation(implementation)
    return model.eval()


def documents(lengths=(11, 17, 9), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(10, 300, size=n) for n in lengths]


def alone(model, doc) -> torch.Tensor:
    """Logits of ``doc`` run by itself: no mask, no position ids (the independent check)."""
    return model(input_ids=torch.as_tensor(doc)[None]).logits[0]


def test_the_mask_is_additive_block_causal():
    mask = document_mask(torch.tensor([[0, 0, 0, 1, 1, 1]]))[0, 0]
    blocked = torch.finfo(torch.float32).min
    assert mask.shape == (6, 6) and mask.dtype == torch.float32
    assert mask[2, 0] == 0 and mask[5, 3] == 0 and mask[4, 4] == 0  # earlier tokens of the same document
    assert mask[3, 2] == blocked and mask[4, 0] == blocked  # the previous document
    assert mask[3, 5] == blocked and mask[0, 1] == blocked  # later tokens


def test_a_shared_segment_is_seen_by_every_segment_but_padding():
    mask = document_mask(torch.tensor([[0, 0, 1, 1, 2, -1]]), torch.bfloat16, shared_segment=0)[0, 0]
    assert mask.dtype == torch.bfloat16
    allowed = (mask == 0).int().tolist()
    assert allowed[4] == [1, 1, 0, 0, 1, 0]  # segment 2 sees the shared prompt and itself, not segment 1
    assert allowed[5] == [0, 0, 0, 0, 0, 1]  # padding sees only itself


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_each_packed_document_has_the_logits_it_has_alone(tiny_tokenizer, implementation):
    model = tiny_model(tiny_tokenizer, implementation)
    docs = documents()
    tokens = np.concatenate(docs + [docs[0][:1]])  # one more token: the window is T + 1
    doc_ids = np.repeat(np.arange(len(docs) + 1), [len(d) for d in docs] + [1])
    batch = pack_windows([(tokens, doc_ids, np.zeros_like(doc_ids))])
    with torch.no_grad():
        packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                       **attention_inputs(model, batch.segment_ids)).logits[0]
        start = 0
        for doc in docs:
            assert (packed[start:start + len(doc)] - alone(model, doc)).abs().max() < 1e-5
            start += len(doc)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_pretraining_losses_of_a_packed_row_are_those_of_its_documents_alone(tiny_tokenizer, implementation):
    model = tiny_model(tiny_tokenizer, implementation)
    docs = documents((20, 7, 13), seed=1)
    tokens = np.concatenate(docs + [docs[0][:1]])
    doc_ids = np.repeat(np.arange(len(docs) + 1), [len(d) for d in docs] + [1])
    batch = pack_windows([(tokens, doc_ids, np.zeros_like(doc_ids))])
    with torch.no_grad():
        packed = forward_losses(model, batch)
        expected = []
        for doc in docs:
            doc = torch.as_tensor(doc)
            expected += [F.cross_entropy(alone(model, doc)[:-1], doc[1:], reduction="none"), torch.zeros(1)]
    assert (batch.targets.flatten() == IGNORE).sum() == len(docs)  # the last token of each document
    assert (packed - torch.cat(expected)).abs().max() < 1e-5


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_responses_packed_after_a_shared_prompt_have_their_logits_alone(tiny_tokenizer, implementation):
    model = tiny_model(tiny_tokenizer, implementation)
    prompt, first, second = documents((8, 6, 10), seed=2)
    ids = torch.as_tensor(np.concatenate([prompt, first, second]))[None]
    segments = torch.tensor([[0] * 8 + [1] * 6 + [2] * 10])
    positions = torch.tensor([list(range(14)) + list(range(8, 18))])  # each response continues the prompt
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions,
                       **attention_inputs(model, segments, shared_segment=0)).logits[0]
        assert (packed[8:14] - alone(model, np.concatenate([prompt, first]))[8:]).abs().max() < 1e-5
        assert (packed[14:] - alone(model, np.concatenate([prompt, second]))[8:]).abs().max() < 1e-5


def test_varlen_implementations_get_no_dense_mask():
    model = SimpleNamespace(config=SimpleNamespace(_attn_implementation="flash_attention_2"), dtype=torch.float32)
    assert attention_inputs(model, torch.zeros(1, 4, dtype=torch.long)) == {}
    with pytest.raises(ValueError, match="flash_attention_2: a segment shared"):
        attention_inputs(model, torch.zeros(1, 4, dtype=torch.long), shared_segment=0)
