"""Any causal LM as base, policy and reward base: Llama, Qwen2/3, Mistral, Gemma and Phi-3, each with its chat family.

Checked against what transformers and the template texts say on their own: the folder reloads
with the same tokenizer, the generation config stops at the end of turn written out by hand, the
reward base is the causal LM's backbone under a fresh score head, and vLLM's greedy tokens equal
transformers' up to the same end-of-turn token (one engine per architecture, reused by its tests).
"""

from __future__ import annotations

import pytest
import torch
from chat_families import conversation
from model_families import CHAT_FAMILY, FAMILIES, family_model_dir, family_tokenizer_for  # noqa: F401 (fixtures)
from safetensors.torch import load_file

# The token that closes an assistant turn in each family's template text (the first stop a policy must honour).
END_OF_TURN_TOKEN = {None: "<|eot_id|>", "qwen2": "<|im_end|>", "chatml": "<|im_end|>", "mistral": "</s>",
                     "gemma": "<end_of_turn>", "phi3": "<|end|>"}
ARCHITECTURE = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3", "mistral": "Mistral", "gemma": "Gemma",
                "gemma2": "Gemma2", "phi3": "Phi3"}
PROMPTS = [[{"role": "user", "content": text}] for text in
           ("What is 12 + 30?", "Translate into French: cat", "Write the word house in capital letters.",
            "What is 97 - 45?", "Ana has 3 apples and buys 4 more.", "Hello, who are you?", "Answer: 42",
            "Reverse the order of these words: red green blue")]


def end_of_turn_id(family: str, tokenizer) -> int:
    return tokenizer.convert_tokens_to_ids(END_OF_TURN_TOKEN[CHAT_FAMILY[family]])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_saved_folder_reloads_its_architecture_and_tokenizer(family, family_model_dir, family_tokenizer_for):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, folder = family_tokenizer_for(family), family_model_dir(family)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == f"{ARCHITECTURE[family]}ForCausalLM"
    assert 2e5 < sum(p.numel() for p in model.parameters()) < 1e6
    messages = conversation(CHAT_FAMILY[family] or "chatml")
    reloaded = AutoTokenizer.from_pretrained(folder)  # transformers may pick the architecture's own tokenizer class
    assert reloaded.apply_chat_template(messages)["input_ids"] == tokenizer.apply_chat_template(messages)["input_ids"]
    assert len(reloaded) == len(tokenizer) == model.config.vocab_size


@pytest.mark.parametrize("family", FAMILIES)
def test_the_generation_config_stops_at_the_end_of_turn(family, family_model_dir, family_tokenizer_for):
    from transformers import GenerationConfig

    tokenizer = family_tokenizer_for(family)
    saved = GenerationConfig.from_pretrained(family_model_dir(family))
    assert end_of_turn_id(family, tokenizer) in saved.eos_token_id
    assert saved.pad_token_id == tokenizer.pad_token_id is not None


def test_saving_a_policy_adds_the_end_of_turn_to_a_base_that_stops_only_at_end_of_text(family_tokenizer_for, tmp_path):
    from transformers import GenerationConfig

    from model_families import build_model
    from workbench.modeling import save_model

    tokenizer = family_tokenizer_for("qwen2")
    model = build_model("qwen2", tokenizer)
    text_end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(eos_token_id=text_end)  # a Qwen2.5 base model's
    saved = GenerationConfig.from_pretrained(save_model(model, tokenizer, tmp_path / "policy"))
    assert saved.eos_token_id[0] == text_end and tokenizer.convert_tokens_to_ids("<|im_end|>") in saved.eos_token_id
    assert model.generation_config.eos_token_id == text_end  # the model in memory is left as it was


@pytest.mark.parametrize("family", FAMILIES)
def test_the_reward_base_is_the_backbone_under_a_fresh_score_head(family, family_model_dir, family_tokenizer_for,
                                                                 tmp_path):
    from reward.scoring import RewardScorer
    from reward.train import load_reward_base, save_reward_model

    folder = family_model_dir(family)
    model, tokenizer = load_reward_base(folder)
    assert type(model).__name__ == f"{ARCHITECTURE[family]}ForSequenceClassification"
    assert model.config.num_labels == 1 and model.score.weight.shape == (1, model.config.hidden_size)
    assert model.config.pad_token_id == family_tokenizer_for(family).pad_token_id is not None
    causal = load_file(str(folder / "model.safetensors"))
    state = model.state_dict()
    backbone = [k for k in causal if k.startswith("model.")]
    assert backbone and all(torch.equal(state[k], causal[k]) for k in backbone)

    responses = ["Answer: 42", "I do not know.", "12 + 30 = 42\nAnswer: 42"]
    prompts = [PROMPTS[0]] * len(responses)
    in_memory = RewardScorer.from_model(model.eval(), tokenizer).score(prompts, responses)
    scorer = RewardScorer(save_reward_model(model, tokenizer, tmp_path / "rm"))
    assert scorer.score(prompts, responses) == pytest.approx(in_memory, abs=1e-6)
    assert len({round(s, 5) for s in in_memory}) == 3
    scorer.close()


# -- vLLM: one engine per architecture, started when its first test runs and shut down after its last ------------

# Llama: tests/workbench/test_modeling.py. Gemma 2 is left out: its tiny random model never ends a turn within
# 40 tokens (the soft cap flattens the logits), and with the end of turn made likelier (its output row x8) near-ties
# at the cap let vLLM and transformers part on one token of 8 prompts (measured); its tokens were equal without that.
VLLM_FAMILIES = [f for f in FAMILIES if f not in ("llama", "gemma2")]


@pytest.fixture(scope="module", params=VLLM_FAMILIES)
def vllm_backend(request, family_model_dir):
    """(family, the workbench's VLLMBackend on that architecture's model); pytest groups the tests by engine."""
    pytest.importorskip("vllm")
    from sampling.backends import VLLMBackend

    with VLLMBackend(family_model_dir(request.param), device="cpu", max_model_len=512) as backend:
        yield request.param, backend


@pytest.mark.slow
def test_vllm_and_transformers_greedy_tokens_are_equal_and_stop_at_the_end_of_turn(vllm_backend, family_model_dir,
                                                                                   family_tokenizer_for):
    from transformers import AutoModelForCausalLM

    family, backend = vllm_backend
    tokenizer = family_tokenizer_for(family)
    model = AutoModelForCausalLM.from_pretrained(family_model_dir(family)).eval()  # its saved generation config
    generations = backend.generate(PROMPTS, n=1, temperature=0.0, top_p=1.0, max_new_tokens=40, seed=0)
    eot, stopped = end_of_turn_id(family, tokenizer), 0
    for messages, (generation,) in zip(PROMPTS, generations):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
        with torch.no_grad():
            hf = model.generate(torch.tensor([ids]), max_new_tokens=40, do_sample=False)[0, len(ids):].tolist()
        assert generation.token_ids == hf, messages
        if eot in hf:
            assert hf.index(eot) == len(hf) - 1 and generation.finish_reason == "stop"
            stopped += 1
    assert 0 < stopped, f"{family}: no greedy generation reached the end of turn; the test checks nothing about stopping"


def test_a_causal_lm_without_a_sequence_classification_class_is_refused_as_reward_base(tiny_tokenizer, tmp_path):
    from transformers import CohereConfig, CohereForCausalLM

    from reward.train import load_reward_base
    from workbench.modeling import save_model

    config = CohereConfig(vocab_size=len(tiny_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                          num_attention_heads=1, num_key_value_heads=1, pad_token_id=tiny_tokenizer.pad_token_id)
    folder = save_model(CohereForCausalLM(config), tiny_tokenizer, tmp_path / "cohere")
    with pytest.raises(ValueError, match=rf"{folder}: transformers has no sequence-classification class .*CohereConfig"):
        load_reward_base(folder)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_passes_the_check_a_users_model_gets(family, family_model_dir):
    from workbench.modeling import check_causal_lm

    assert check_causal_lm(family_model_dir(family)) == f"{ARCHITECTURE[family]}ForCausalLM"


def test_the_check_names_the_folder_and_every_problem_at_once(tiny_tokenizer, tmp_path):
    from transformers import CohereConfig

    from workbench.modeling import check_causal_lm

    with pytest.raises(ValueError, match=f"{tmp_path}: no config.json"):
        check_causal_lm(tmp_path)
    CohereConfig(vocab_size=len(tiny_tokenizer)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=rf"^{tmp_path}: model type 'cohere' has no sequence-classification class "
                                         r"for the reward model; no weights \(\*\.safetensors or \*\.bin\)$"):
        check_causal_lm(tmp_path)


def preferences(n: int):
    """Chosen answers, rejected refusals: learnable by a random tiny model in a few steps."""
    from workbench.preferences import Preference

    return [Preference(id=f"p{i}", prompt=[{"role": "user", "content": f"What is {i} + {i + 1}?"}],
                       chosen=f"{i} + {i + 1} = {2 * i + 1}\nAnswer: {2 * i + 1}", rejected="I do not know.",
                       level="significantly_better") for i in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2", "gemma", "phi3"])
def test_a_reward_model_trains_on_other_architectures(family, family_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, set_seed

    from reward.scoring import RewardScorer
    from reward.train import load_reward_base, train_reward_model
    from reward.trainer import bradley_terry_loss
    from rounds.full_config import WorkbenchConfig
    from workbench.config import TrackingConfig

    cfg = WorkbenchConfig(tracking=TrackingConfig(backend="none"), device="cpu")
    cfg.reward.num_train_epochs, cfg.reward.batch_size, cfg.reward.learning_rate = 3.0, 4, 1e-3
    train, held = preferences(16), preferences(20)[16:]

    def loss(scorer):
        chosen = scorer.score([r.prompt for r in train], [r.chosen for r in train])
        rejected = scorer.score([r.prompt for r in train], [r.rejected for r in train])
        return bradley_terry_loss(torch.tensor(chosen), torch.tensor(rejected)).item()

    metrics = train_reward_model(cfg, train, family_model_dir(family), tmp_path / "rm", seed=0, heldout=held)
    set_seed(0)  # the head the training started from
    base, tokenizer = load_reward_base(family_model_dir(family))
    before = loss(RewardScorer.from_model(base.eval(), tokenizer))
    assert loss(RewardScorer(tmp_path / "rm")) < before
    assert metrics["heldout_pairs"] == 4 and metrics["train_pairs"] == 16
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm")
    assert type(model).__name__ == f"{ARCHITECTURE[family]}ForSequenceClassification"


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2", "mistral", "gemma", "phi3"])
def test_sft_then_dpo_train_a_policy_of_the_same_architecture(family, family_model_dir, family_tokenizer_for, tmp_path):
    from transformers import AutoModelForCausalLM, GenerationConfig

    from workbench.posttrain.config import DPOConfig, SFTConfig
    from workbench.posttrain.dpo import train_dpo
    from workbench.posttrain.sft import train_sft

    rows = [{"messages": [*r.prompt, {"role": "assistant", "content": r.chosen}]} for r in preferences(4)]
    sft = tmp_path / "sft"
    sft_metrics = train_sft(SFTConfig(per_device_train_batch_size=2, num_train_epochs=1, max_length=128,
                                      trl_args={"disable_tqdm": True}), rows, family_model_dir(family), sft, seed=0)
    dpo = tmp_path / "dpo"
    dpo_metrics = train_dpo(DPOConfig(per_device_train_batch_size=2, num_train_epochs=1, max_length=128,
                                      trl_args={"disable_tqdm": True}), preferences(4), sft, dpo, seed=0)
    assert sft_metrics["global_step"] == dpo_metrics["global_step"] == 2
    assert END_OF_TURN_TOKEN[CHAT_FAMILY[family]] in dpo_metrics["masked_tokens"]
    tokenizer = family_tokenizer_for(family)
    start, end = load_file(str(family_model_dir(family) / "model.safetensors")), load_file(str(dpo / "model.safetensors"))
    assert set(start) == set(end) and any(not torch.equal(start[k], end[k]) for k in start)
    assert type(AutoModelForCausalLM.from_pretrained(dpo)).__name__ == f"{ARCHITECTURE[family]}ForCausalLM"
    assert end_of_turn_id(family, tokenizer) in GenerationConfig.from_pretrained(dpo).eos_token_id


def test_pair_rows_that_end_with_the_pad_token_are_refused(family_model_dir, tmp_path):
    from reward.train import build_trainer, load_reward_base
    from rounds.full_config import WorkbenchConfig
    from workbench.config import TrackingConfig

    cfg = WorkbenchConfig(tracking=TrackingConfig(backend="none"), device="cpu")
    cfg.reward.row_format = "pair"
    model, tokenizer = load_reward_base(family_model_dir("phi3"))  # Phi-3 ends a reply with the EOS it pads with
    assert tokenizer.pad_token == "<|endoftext|>"
    with pytest.raises(ValueError, match="responses end with the pad token '<\\|endoftext\\|>'.*row_format: packed"):
        build_trainer(cfg, model, tokenizer, preferences(2), tmp_path, seed=0)
    model, tokenizer = load_reward_base(family_model_dir("qwen2"))  # ChatML ends a reply with "<|im_end|>\n"
    trainer, counts = build_trainer(cfg, model, tokenizer, preferences(2), tmp_path, seed=0)
    assert counts["train_rows"] == 2


def test_the_check_takes_a_tokenizer_from_another_folder_and_refuses_one_that_does_not_fit(
        family_model_dir, tiny_tokenizer_dir, tmp_path):
    from chat_families import build_tokenizer

    from model_families import save_family_model
    from workbench.modeling import check_causal_lm

    assert check_causal_lm(family_model_dir("llama"), tokenizer_dir=tiny_tokenizer_dir) == "LlamaForCausalLM"
    small = save_family_model("qwen3", build_tokenizer("chatml", vocab_size=300), tmp_path / "small")
    assert check_causal_lm(small) == "Qwen3ForCausalLM"
    with pytest.raises(ValueError, match=rf"{small}: the tokenizer has ids up to 399 but the model's vocabulary has 300"):
        check_causal_lm(small, tokenizer_dir=tiny_tokenizer_dir)
