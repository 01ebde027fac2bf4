"""Model families; importing this package registers every model."""

from zoo.models import mlp, resnet, seed_cnn, seed_lstm, vit
from zoo.models.mlp import MLP, MLPConfig
from zoo.models.resnet import ResNet, ResNetConfig
from zoo.models.seed_cnn import SeedCNN, SeedCNNConfig
from zoo.models.seed_lstm import SeedLSTM, SeedLSTMConfig
from zoo.models.vit import ViT, ViTConfig
from zoo.models.vision import extract_features, pooled_features, replace_head

__all__ = ["MLP", "MLPConfig", "ResNet", "ResNetConfig", "SeedCNN", "SeedCNNConfig", "SeedLSTM", "SeedLSTMConfig",
           "extract_features", "mlp", "pooled_features", "replace_head", "resnet", "seed_cnn", "seed_lstm",
           "ViT", "ViTConfig", "vit"]
