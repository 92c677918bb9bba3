"""Run `train_dpo` for the 1-process vs 2-process test: MODEL_DIR PREFS_JSONL OUT_DIR PER_DEVICE_BATCH."""

import json
import sys

from accelerate import PartialState

from workbench.posttrain.config import DPOConfig
from workbench.posttrain.dpo import train_dpo
from workbench.preferences import read_jsonl

if __name__ == "__main__":
    model_dir, prefs, out_dir, batch = sys.argv[1:5]
    config = DPOConfig(per_device_train_batch_size=int(batch), num_train_epochs=1, learning_rate=1e-3,
                       max_length=128, trl_args={"disable_tqdm": True})
    metrics = train_dpo(config, read_jsonl(prefs), model_dir, out_dir, seed=0)
    if PartialState().is_main_process:
        with open(f"{out_dir}/metrics.json", "w") as f:
            json.dump(metrics, f)
