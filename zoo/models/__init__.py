"""Model families; importing this package registers every model."""

from zoo.models import bert, gpt2, mlp, resnet, seed_cnn, seed_lstm, vit
from zoo.models.bert import Bert, BertConfig
from zoo.models.gpt2 import GPT2, GPT2Config
from zoo.models.mlp import MLP, MLPConfig
from zoo.models.resnet import ResNet, ResNetConfig
from zoo.models.seed_cnn import SeedCNN, SeedCNNConfig
from zoo.models.seed_lstm import SeedLSTM, SeedLSTMConfig
from zoo.models.vit import ViT, ViTConfig
from zoo.models.vision import extract_features, pooled_features, replace_head

__all__ = ["Bert", "BertConfig", "bert", "GPT2", "GPT2Config", "gpt2", "MLP", "MLPConfig", "ResNet", "ResNetConfig",
           "SeedCNN", "SeedCNNConfig", "SeedLSTM", "SeedLSTMConfig", "ViT", "ViTConfig", "extract_features", "mlp",
           "pooled_features", "replace_head", "resnet", "seed_cnn", "seed_lstm", "vit"]
