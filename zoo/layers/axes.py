"""Logical axis names used by every zoo model.

Models annotate parameters and activations with these names only
(``nn.with_logical_partitioning``); the mapping from logical names to mesh
axes lives in the parallel code, so every model also runs with no mesh.
"""

BATCH = "batch"
LENGTH = "length"  # time / sequence positions
HEIGHT = "height"
WIDTH = "width"
EMBED = "embed"  # model width / features of a dense layer's input
MLP = "mlp"  # hidden width of a dense layer's output
CLASSES = "classes"
CONV_WINDOW = "conv_window"  # kernel height / width
CONV_IN = "conv_in"
CONV_OUT = "conv_out"
GATES = "gates"  # fused LSTM gate dimension (4 * hidden)
HEADS = "heads"  # attention heads
KV = "kv"  # per-head query / key / value features
VOCAB = "vocab"  # rows of a token embedding table (and the LM output)
POSITIONS = "positions"  # rows of a learned position / token-type embedding table

__all__ = [
    "BATCH", "LENGTH", "HEIGHT", "WIDTH", "EMBED", "MLP", "CLASSES",
    "CONV_WINDOW", "CONV_IN", "CONV_OUT", "GATES", "HEADS", "KV", "VOCAB", "POSITIONS",
]
