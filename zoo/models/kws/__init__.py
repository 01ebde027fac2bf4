"""Keyword spotting: a small CNN on log-mel features computed on the device from the raw waveform."""

from zoo.models.kws.model import KWSCNN, KWSConfig

__all__ = ["KWSCNN", "KWSConfig"]
