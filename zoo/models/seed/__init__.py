"""The seed document's small models: an MLP, its Keras CNN and its Keras LSTM.

``mlp.py``, ``cnn.py`` and ``lstm.py`` hold the modules (registered as ``mlp``,
``seed_cnn``, ``seed_lstm``); ``keras.py`` copies weights to and from Keras
``Sequential`` models of the same architecture (imported lazily, never needs Keras).
"""

from zoo.models.seed.cnn import SeedCNN, SeedCNNConfig
from zoo.models.seed.lstm import LSTMSeq2Seq, LSTMSeq2SeqConfig, SeedLSTM, SeedLSTMConfig
from zoo.models.seed.mlp import MLP, MLPConfig

__all__ = ["LSTMSeq2Seq", "LSTMSeq2SeqConfig", "MLP", "MLPConfig", "SeedCNN", "SeedCNNConfig", "SeedLSTM", "SeedLSTMConfig"]
