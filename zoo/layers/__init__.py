"""Shared building blocks for zoo models."""

from zoo.layers import audio, axes, decoding, explicit
from zoo.layers.checks import (canonical_dtype, check_ids_in_range, check_input, check_positive_ints, check_rate,
                               check_table_ids, check_tokens, normalize_config)
from zoo.layers.conv import CONV_IMPLS, Conv2D, conv2d, max_pool
from zoo.layers.dropout import Dropout
from zoo.layers.explicit import with_logical_constraint
from zoo.layers.linear import Dense
from zoo.layers.norms import RMSNorm
from zoo.layers.recurrent import LSTM
from zoo.layers.attention import (ATTENTION_IMPLS, MultiHeadAttention, causal_mask, combine_masks,
                                  dot_product_attention, padding_mask)
from zoo.layers.transformer import ACTIVATIONS, Embed, FeedForward, LayerNorm, TransformerBlock, activation_fn

__all__ = [
    "audio", "axes", "decoding", "explicit",
    "canonical_dtype", "check_ids_in_range", "check_input", "check_positive_ints", "check_rate", "check_table_ids", "check_tokens",
    "normalize_config",
    "CONV_IMPLS", "Conv2D", "conv2d", "max_pool",
    "Dense", "Dropout", "LSTM", "RMSNorm",
    "ATTENTION_IMPLS", "MultiHeadAttention", "causal_mask", "combine_masks", "dot_product_attention", "padding_mask",
    "ACTIVATIONS", "Embed", "FeedForward", "LayerNorm", "TransformerBlock", "activation_fn",
    "with_logical_constraint",
]
