"""Whisper: speech encoder-decoder (openai/whisper-tiny sizes), Hugging Face conversion, greedy decoding."""

from zoo.models.whisper.model import Whisper, WhisperConfig, greedy_decode

__all__ = ["Whisper", "WhisperConfig", "greedy_decode"]
