"""Whisper: speech encoder-decoder (openai/whisper-tiny sizes), Hugging Face conversion, greedy decoding."""

from zoo.models.whisper.model import FSDD_OVERRIDES, Whisper, WhisperConfig, greedy_decode

__all__ = ["FSDD_OVERRIDES", "Whisper", "WhisperConfig", "greedy_decode"]
