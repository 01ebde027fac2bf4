"""Forecasters for the ``forecasting`` task: N-BEATS and a PatchTST-style patch Transformer.

The seed LSTM's sequence-to-sequence forecaster lives beside the seed LSTM
(``zoo.models.seed.lstm.LSTMSeq2Seq``), which it reuses.
"""

from zoo.models.forecast.nbeats import NBeats, NBeatsConfig
from zoo.models.forecast.patchtst import PatchTST, PatchTSTConfig
from zoo.models.seed.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig

__all__ = ["LSTMSeq2Seq", "LSTMSeq2SeqConfig", "NBeats", "NBeatsConfig", "PatchTST", "PatchTSTConfig"]
