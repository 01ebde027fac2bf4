"""GPT-2: a pre-norm causal transformer decoder with tied embeddings, and key/value-cache generation.

``model.py`` holds the module, :func:`generate` and the registered variants;
``hf.py`` converts Hugging Face checkpoints (imported lazily by :func:`zoo.from_pretrained`).
"""

from zoo.models.gpt2.model import GPT2, VARIANTS, GPT2Config, generate, init_cache

__all__ = ["GPT2", "GPT2Config", "VARIANTS", "generate", "init_cache"]
