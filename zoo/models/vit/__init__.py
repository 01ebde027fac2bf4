"""Vision Transformer, laid out like Hugging Face's ``ViTModel``.

``model.py`` holds the module and its registered variants; ``hf.py`` converts
Hugging Face checkpoints (imported lazily by :func:`zoo.from_pretrained`).
"""

from zoo.models.vit.model import POOLINGS, ViT, ViTConfig

__all__ = ["POOLINGS", "ViT", "ViTConfig"]
