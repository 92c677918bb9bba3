"""Config of `workbench pretrain`."""

from dataclasses import dataclass

from workbench.config_base import ConfigError, field


@dataclass
class PretrainConfig:
    """Pretraining of the base model from scratch.

    The run has two phases: ``max_steps`` steps of linear warm-up then cosine decay to
    ``learning_rate * min_lr_ratio`` on ``train.jsonl``, then ``anneal_steps`` steps with the learning
    rate decayed linearly to 0 on a mix upsampling ``anneal.jsonl``; the last ``anneal_average``
    snapshots of the annealing phase are averaged into the base model (Llama 3, section 3.4.3).
    ``ramp`` lists ``[from_step, seq_len, batch_size]`` stages: the global batch (sequences per
    step) and the sequence length grow during training, as in Llama 3.
    """

    max_steps: int = field(300, "optimizer steps before annealing")
    warmup_steps: int = field(30, "steps of linear learning-rate warm-up from 0")
    learning_rate: float = field(3e-3, "peak learning rate of the cosine schedule")
    min_lr_ratio: float = field(0.1, "the cosine ends at learning_rate x min_lr_ratio; annealing starts there")
    weight_decay: float = field(0.1, "AdamW weight decay on the weight matrices (an untied output head "
                                     "included); not on norms, biases or the token embedding, tied or not")
    adam_beta1: float = field(0.9, "AdamW beta1")
    adam_beta2: float = field(0.95, "AdamW beta2 (Llama 3: 0.95)")
    grad_clip: float = field(1.0, "clip the global gradient norm to this (0 disables)")
    ramp: list[list[int]] = field(
        [[0, 128, 16], [100, 256, 16]],
        "[from_step, seq_len, batch_size] stages; batch_size is global (sequences per step, all processes)",
    )
    micro_batch_size: int = field(0, "sequences per forward pass per process; 0: the whole local batch (no accumulation)")
    anneal_steps: int = field(60, "steps of the final annealing phase (learning rate linearly to 0)")
    anneal_upsample: float = field(0.5, "fraction of annealing-phase sequences drawn from anneal.jsonl (the rest from train.jsonl)")
    anneal_average: int = field(4, "snapshots of the annealing phase averaged into the base (evenly spaced, the last is the final step)")
    eval_interval: int = field(100, "steps between held-out evaluations (0: only before and after annealing)")
    eval_tokens: int = field(16384, "most held-out tokens per domain per evaluation")
    checkpoint_interval: int = field(50, "steps between resumable checkpoints (model, optimizer, RNG, data position)")
    keep_checkpoints: bool = field(False, "keep base/checkpoints/ after success (else it is removed)")
    seed: int | None = field(None, "seed of the model's init and the data order (null: the run's seed)")
    log_interval: int = field(1, "steps between tracker logs")
    compile: bool = field(False, "torch.compile the training step's forward pass and loss (inductor); "
                                 "pays a compile for each ramp shape, see the README's benchmarks")
    deterministic: bool = field(True, "torch.use_deterministic_algorithms (warn_only) for the training loop, so a "
                                      "seed gives the same weights run after run: inductor's CPU kernels otherwise add "
                                      "embedding gradients with atomic adds in thread order (pretrain.compile); on "
                                      "CUDA also set CUBLAS_WORKSPACE_CONFIG=:4096:8, or false for speed")
    init_from: str | None = field(None, "start from this HF model folder's weights instead of a random init "
                                        "(continued pretraining, e.g. of capability experts)")

    def validate(self) -> None:
        """Check ranges and the ramp."""
        if self.max_steps < 1 or self.anneal_steps < 0 or self.warmup_steps < 0:
            raise ConfigError("max_steps, anneal_steps, warmup_steps: max_steps >= 1, the others >= 0")
        if self.warmup_steps > self.max_steps:
            raise ConfigError(f"warmup_steps: {self.warmup_steps} is more than max_steps {self.max_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0 or not 0.0 <= self.anneal_upsample <= 1.0:
            raise ConfigError("min_lr_ratio, anneal_upsample: must be in [0, 1]")
        if self.anneal_average < 1 or self.anneal_average > max(1, self.anneal_steps):
            raise ConfigError(f"anneal_average: {self.anneal_average} must be in 1..anneal_steps ({self.anneal_steps})")
        if not self.ramp or any(len(stage) != 3 for stage in self.ramp):
            raise ConfigError("ramp: expected a non-empty list of [from_step, seq_len, batch_size]")
        starts = [stage[0] for stage in self.ramp]
        if starts[0] != 0 or starts != sorted(set(starts)):
            raise ConfigError(f"ramp: from_step values {starts} must start at 0 and increase")
        if any(seq_len < 2 or batch < 1 for _, seq_len, batch in self.ramp):
            raise ConfigError("ramp: seq_len must be >= 2 and batch_size >= 1")
        if self.checkpoint_interval < 1 or self.log_interval < 1:
            raise ConfigError("checkpoint_interval, log_interval: must be >= 1")
