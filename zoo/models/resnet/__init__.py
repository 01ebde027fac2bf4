"""ResNet with basic and bottleneck blocks, laid out like Hugging Face's ``ResNetModel``.

``model.py`` holds the module and its registered variants; ``hf.py`` converts
Hugging Face checkpoints (imported lazily by :func:`zoo.from_pretrained`).
"""

from zoo.models.resnet.model import BLOCKS, STEMS, ResNet, ResNetConfig

__all__ = ["BLOCKS", "STEMS", "ResNet", "ResNetConfig"]
