"""Before the rounds, data: the pretraining corpus (generated, noise planted, cleaned, mixed) in ``data/``.

The recipe is the core's (``workbench.data.build.STAGE``): `workbench data build` runs it too.
"""

from workbench.data.build import STAGE

__all__ = ["STAGE"]
