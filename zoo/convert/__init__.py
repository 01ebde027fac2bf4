"""Weight conversion: Hugging Face checkpoint directories to and from zoo models.

``zoo.convert.auto`` dispatches on ``config.json``'s ``model_type`` (as
``transformers.AutoModel`` does); ``zoo.convert.hf`` holds the shared pieces
(reading and writing ``config.json`` + safetensors, :class:`~zoo.convert.hf.KeyMap`).
Each family's mapping lives in ``zoo.models.<family>.hf``.  Nothing here imports
torch or transformers.
"""

from zoo.convert.auto import SUPPORTED_MODEL_TYPES, from_pretrained, save_pretrained
from zoo.convert.hf import CheckpointFormatError

__all__ = ["CheckpointFormatError", "SUPPORTED_MODEL_TYPES", "from_pretrained", "save_pretrained"]
