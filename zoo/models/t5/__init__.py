"""T5: an encoder-decoder transformer with relative position buckets (v1.0 ReLU and v1.1 gated GELU).

``model.py`` holds the module, the decoding cache, :func:`generate` and the registered variants;
``hf.py`` converts Hugging Face ``T5ForConditionalGeneration`` checkpoints (imported lazily by
:func:`zoo.from_pretrained`).
"""

from zoo.models.t5.model import T5, T5Config, generate, init_cache, relative_position_bucket

__all__ = ["T5", "T5Config", "generate", "init_cache", "relative_position_bucket"]
