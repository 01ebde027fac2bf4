"""Anomaly scorers for the ``anomaly_*`` tasks: an autoencoder, a VAE and Deep SVDD."""

from zoo.models.anomaly.autoencoder import VAE, Autoencoder, AutoencoderConfig
from zoo.models.anomaly.deep_svdd import DeepSVDD, DeepSVDDConfig

__all__ = ["Autoencoder", "AutoencoderConfig", "DeepSVDD", "DeepSVDDConfig", "VAE"]
