"""Model families, one package each; importing this package registers every model."""

from zoo.models import anomaly, bert, forecast, gpt2, recommend, resnet, seed, vit
from zoo.models.bert import Bert, BertConfig
from zoo.models.features import extract_features, pooled_features, replace_head
from zoo.models.gpt2 import GPT2, GPT2Config
from zoo.models import kws  # noqa: E402  (keyword spotting)
from zoo.models.kws import KWSCNN, KWSConfig
from zoo.models import whisper  # noqa: E402  (speech to text)
from zoo.models.whisper import Whisper, WhisperConfig
from zoo.models import tts  # noqa: E402  (speech synthesis)
from zoo.models.tts import MelTTS, MelTTSConfig
from zoo.models import t5  # noqa: E402  (encoder-decoder text)
from zoo.models.t5 import T5, T5Config
from zoo.models.resnet import ResNet, ResNetConfig
from zoo.models.seed import MLP, MLPConfig, SeedCNN, SeedCNNConfig, SeedLSTM, SeedLSTMConfig
from zoo.models.vit import ViT, ViTConfig

__all__ = ["anomaly", "forecast", "recommend", "Bert", "BertConfig", "GPT2", "GPT2Config", "MLP", "MLPConfig", "ResNet", "ResNetConfig", "SeedCNN",
           "SeedCNNConfig", "SeedLSTM", "SeedLSTMConfig", "ViT", "ViTConfig", "bert", "extract_features", "gpt2",
           "pooled_features", "replace_head", "resnet", "seed", "vit", "kws", "KWSCNN", "KWSConfig", "whisper", "Whisper", "WhisperConfig", "tts", "MelTTS",
           "MelTTSConfig", "t5", "T5", "T5Config"]
