"""Speech synthesis: a label-conditioned, non-autoregressive mel-frame generator (vocoded with Griffin-Lim)."""

from zoo.models.tts.model import MelTTS, MelTTSConfig

__all__ = ["MelTTS", "MelTTSConfig"]
