"""Model families; importing this package registers every model."""

from zoo.models import bert, gpt2, mlp, seed_cnn, seed_lstm
from zoo.models.bert import Bert, BertConfig
from zoo.models.gpt2 import GPT2, GPT2Config
from zoo.models.mlp import MLP, MLPConfig
from zoo.models.seed_cnn import SeedCNN, SeedCNNConfig
from zoo.models.seed_lstm import SeedLSTM, SeedLSTMConfig

__all__ = ["Bert", "BertConfig", "bert", "GPT2", "GPT2Config", "gpt2", "MLP", "MLPConfig", "SeedCNN", "SeedCNNConfig", "SeedLSTM", "SeedLSTMConfig", "mlp", "seed_cnn", "seed_lstm"]
