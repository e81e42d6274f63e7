"""Released checkpoints -> our format.

- :mod:`.converter`: :func:`convert_checkpoint` (Artemis-7b-ftune + Artemis-7B-lora + CLIP -> an Artemis
  directory; plan, then stream), :class:`ConvertOptions`, :class:`ConversionReport`; ``python -m
  artemis_model.convert``.
- :mod:`.keys`: the key map and the config of the original checkpoints; :mod:`.plan`: the plan (every key
  checked before anything is written); :mod:`.checkpoint_io`: safe reading (safetensors, ``weights_only``
  pickles) and streaming shard writing; :mod:`.verify`: load a converted directory and answer one question.
- :mod:`.assemble`: a plain LLaMA + CLIP -> stage 1's starting checkpoint (``artemis init-model``).
"""

from __future__ import annotations

from artemis_model.convert.checkpoint_io import ConversionError
from artemis_model.convert.converter import (
    DTYPES,
    ConversionReport,
    ConvertOptions,
    ImageTowerCheck,
    convert_checkpoint,
    main,
    parse_size,
)

__all__ = [
    "DTYPES",
    "ConversionError",
    "ConversionReport",
    "ConvertOptions",
    "ImageTowerCheck",
    "convert_checkpoint",
    "main",
    "parse_size",
]
