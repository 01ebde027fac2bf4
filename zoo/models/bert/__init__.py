"""BERT: a post-norm transformer encoder with classification, token-classification and span-QA heads.

``model.py`` holds the module and its registered variants; ``hf.py`` converts
Hugging Face checkpoints (imported lazily by :func:`zoo.from_pretrained`).
"""

from zoo.models.bert.model import BERT_TASKS, VARIANTS, Bert, BertConfig, BertEmbeddings

__all__ = ["BERT_TASKS", "VARIANTS", "Bert", "BertConfig", "BertEmbeddings"]
