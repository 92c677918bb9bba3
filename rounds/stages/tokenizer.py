"""Before the rounds, tokenizer: byte-level BPE trained on the corpus (or ``tokenizer.path``) in ``tokenizer/``.

The recipe is the core's (``workbench.stages.TOKENIZER``): `workbench tokenizer train` runs it too.
"""

from workbench.stages import TOKENIZER as STAGE

__all__ = ["STAGE"]
