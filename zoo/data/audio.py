"""The Free Spoken Digit Dataset (FSDD): 3,000 mono 8 kHz WAV recordings of the digits 0-9, 6 speakers.

FSDD (Jakobovski et al., github.com/Jakobovski/free-spoken-digit-dataset) is licensed CC BY-SA 4.0;
zoo does not ship the recordings, it reads a directory of the dataset's own files, named
``{digit}_{speaker}_{index}.wav``.  The default directory is ``../shared/data/fsdd/recordings``
relative to the repository root (where the development machines and CI keep a copy; see
``docs/speech.md``); ``fsdd:DIR`` or ``load_fsdd_arrays(directory=...)`` reads another.

``--data fsdd`` serves the conventional split: recordings with index 0-4 of every digit
and speaker are the test set (300), the rest train (2,700).  ``fsdd:speaker=NAME`` tests on
all 500 recordings of speaker NAME and trains on the other five speakers (``fsdd:DIR,
speaker=NAME`` combines both).

Waveforms are float32 in [-1, 1] at 8 kHz, served as ``[N, 8000]`` (one second: shorter
recordings are zero-padded at the end, the 20 longer ones keep their middle second) for a
model whose input is the raw waveform (layout ``vector``, ``input_shape (8000,)``; the model
computes its own log-mel features on the device).  A file of another sample rate is refused
(resample it first, e.g. ``sox in.wav -r 8000 out.wav``): silently resampling would hide a
mixed-up directory.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from zoo.data.pipeline import ArrayDataset

SAMPLE_RATE = 8000
CLIP_SAMPLES = 8000  # one second
TEST_INDICES = range(5)  # the dataset's convention: index 0-4 is the test set
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def default_directory() -> str:
    """``../shared/data/fsdd/recordings`` next to the repository this package is in."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.normpath(os.path.join(root, "..", "shared", "data", "fsdd", "recordings"))


@dataclasses.dataclass(frozen=True)
class Recordings:
    """Every recording of a directory: waveforms (variable length) and what each file name says."""

    waves: list  # float32 [n_i] at SAMPLE_RATE
    digits: np.ndarray  # [N] int32
    speakers: np.ndarray  # [N] str
    indices: np.ndarray  # [N] int32
    files: list


def read_wav(file: str) -> np.ndarray:
    """One mono 8 kHz WAV as float32 ``[n]``; ValueError naming the file for anything else."""
    import soundfile

    try:
        wave, rate = soundfile.read(file, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise ValueError(f"{file}: not a readable WAV file ({e})") from None
    if wave.shape[0] == 0:
        raise ValueError(f"{file}: empty recording (0 samples)")
    if wave.shape[1] != 1:
        raise ValueError(f"{file}: {wave.shape[1]} channels; FSDD recordings are mono (mix it down first)")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{file}: sample rate {rate} Hz; FSDD is {SAMPLE_RATE} Hz (resample it first, e.g. "
                         f"`sox IN -r {SAMPLE_RATE} OUT`)")
    return wave[:, 0]


def parse_name(file: str) -> tuple[int, str, int]:
    """``(digit, speaker, index)`` of a ``{digit}_{speaker}_{index}.wav`` name."""
    match = _NAME.match(os.path.basename(file))
    if not match:
        raise ValueError(f"{file}: name does not parse as FSDD's {{digit}}_{{speaker}}_{{index}}.wav")
    return int(match[1]), match[2], int(match[3])


def load_recordings(directory: str | None = None, *, limit_per_class: int | None = None) -> Recordings:
    """Reads every ``*.wav`` of ``directory`` (default :func:`default_directory`), sorted by name.

    ``limit_per_class``: at most this many recordings per (digit, speaker) with the lowest
    indices (tests read a few hundred files, not 3,000).
    """
    directory = default_directory() if directory is None else os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"FSDD directory {directory!r} does not exist (give the directory of the dataset's "
                         "{digit}_{speaker}_{index}.wav files, e.g. fsdd:PATH)")
    names = sorted(f for f in os.listdir(directory) if f.lower().endswith(".wav"))
    if not names:
        raise ValueError(f"FSDD directory {directory!r} holds no .wav files")
    parsed = [(parse_name(os.path.join(directory, f)), f) for f in names]
    if limit_per_class is not None:
        parsed = [p for p in parsed if p[0][2] < limit_per_class]
    parsed.sort(key=lambda p: (p[0][1], p[0][0], p[0][2]))
    files = [os.path.join(directory, f) for _, f in parsed]
    return Recordings(waves=[read_wav(f) for f in files],
                      digits=np.array([p[0][0] for p in parsed], np.int32),
                      speakers=np.array([p[0][1] for p in parsed]),
                      indices=np.array([p[0][2] for p in parsed], np.int32), files=files)


def fit_clip(wave: np.ndarray, samples: int = CLIP_SAMPLES) -> np.ndarray:
    """``wave`` zero-padded at the end to ``samples``, or its middle ``samples`` if longer."""
    if len(wave) >= samples:
        start = (len(wave) - samples) // 2
        return wave[start:start + samples]
    return np.pad(wave, (0, samples - len(wave)))


def clips(waves, samples: int = CLIP_SAMPLES) -> np.ndarray:
    """``[N, samples]`` float32 of :func:`fit_clip` of each wave."""
    return np.stack([fit_clip(w, samples) for w in waves]).astype(np.float32)


def split_masks(rec: Recordings, speaker: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` boolean masks: index 0-4 is test, or all of ``speaker``'s recordings."""
    if speaker is None:
        test = np.isin(rec.indices, list(TEST_INDICES))
    else:
        known = sorted(set(rec.speakers.tolist()))
        if speaker not in known:
            raise ValueError(f"fsdd: unknown speaker {speaker!r}; the recordings have speakers {known}")
        test = rec.speakers == speaker
    return ~test, test


def parse_args(name: str) -> tuple[str | None, str | None]:
    """``(directory, speaker)`` of ``fsdd``, ``fsdd:DIR``, ``fsdd:speaker=NAME`` or ``fsdd:DIR,speaker=NAME``."""
    _, _, args = str(name).partition(":")
    directory = speaker = None
    for part in filter(None, args.split(",")):
        if part.startswith("speaker="):
            speaker = part[len("speaker="):]
            if not speaker:
                raise ValueError(f"fsdd: speaker= needs a name, e.g. fsdd:speaker=jackson; got {name!r}")
        elif "=" in part:
            raise ValueError(f"fsdd takes DIR and speaker=NAME; got {part!r} in {name!r}")
        else:
            directory = part
    return directory, speaker


# -- transcription: characters as tokens ----------------------------------------------------------
PAD_ID, START_ID, EOS_ID = 0, 1, 2  # then "a".."z" = 3..28
CHAR_VOCAB = 3 + 26


def encode_text(text: str, length: int) -> np.ndarray:
    """``[length]`` int32 character ids of a lower-case word, then EOS, then padding."""
    if not re.fullmatch(r"[a-z]+", text):
        raise ValueError(f"transcripts are lower-case words a-z, got {text!r}")
    if len(text) + 1 > length:
        raise ValueError(f"{text!r} needs {len(text) + 1} tokens with EOS; the model's target_length is {length}")
    ids = [3 + ord(c) - ord("a") for c in text] + [EOS_ID]
    return np.array(ids + [PAD_ID] * (length - len(ids)), np.int32)


def decode_text(ids) -> str:
    """Text of character ids, stopping at EOS (start and pad ids are skipped)."""
    out = []
    for i in np.asarray(ids).tolist():
        if i == EOS_ID:
            break
        if i >= 3:
            out.append(chr(ord("a") + i - 3))
    return "".join(out)


def transcription_features(waves, input_shape: tuple[int, int], *, batch_size: int = 256) -> np.ndarray:
    """``[N, T, M]`` standardised log-mel frames (25.6 ms window every 10 ms) of 1 s clips, for an encoder.

    The same front end as ``kws_cnn`` (``zoo.models.kws.model.log_mel_features``), the first ``T`` frames.
    """
    import jax

    from zoo.models.kws.model import KWSConfig, log_mel_features

    frames, mels = input_shape
    config = KWSConfig(n_mels=mels)
    fn = jax.jit(lambda x: log_mel_features(config, x)[:, :frames])
    x = clips(waves) if isinstance(waves, list) else np.asarray(waves, np.float32)
    out = np.concatenate([np.asarray(fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
    if out.shape[1] != frames:
        raise ValueError(f"1 s of 8 kHz audio has {out.shape[1]} frames; the model expects {frames}")
    return out


def transcription_arrays(features: np.ndarray, digits: np.ndarray, length: int) -> dict:
    """The transcription task's batch entries: features, decoder ids (start + text) and labels (text + EOS)."""
    labels = np.stack([encode_text(DIGIT_WORDS[d], length) for d in digits])
    decoder = np.concatenate([np.full((len(labels), 1), START_ID, np.int32), labels[:, :-1]], 1)
    decoder[decoder == EOS_ID] = PAD_ID  # what follows the text is never a teacher-forced input that counts
    return {"inputs": features, "decoder_input_ids": decoder,
            "labels": np.where(labels == PAD_ID, -100, labels).astype(np.int32)}


# -- synthesis: onset-aligned log-mel targets and a Griffin-Lim vocoder --------------------------
SYNTH_N_FFT, SYNTH_HOP, SYNTH_TOP_DB = 256, 80, 80.0


def trim_onset(wave: np.ndarray, threshold_db: float = 30.0) -> np.ndarray:
    """``wave`` from its first 10 ms frame within ``threshold_db`` of its loudest (drops leading silence)."""
    hop = SYNTH_HOP
    frames = max(1, len(wave) // hop)
    rms = np.sqrt(np.mean(wave[:frames * hop].reshape(frames, hop) ** 2, -1) + 1e-12)
    start = int(np.argmax(rms >= rms.max() * 10 ** (-threshold_db / 20)))
    return wave[start * hop:]


def synthesis_targets(waves, frames: int, mels: int) -> np.ndarray:
    """``[N, frames, mels]`` in [0, 1]: each onset-aligned clip's log-mel dB below its peak, ``/ 80 + 1``."""
    import jax

    from zoo.layers import audio as front

    x = np.stack([fit_clip(trim_onset(w), CLIP_SAMPLES) if len(trim_onset(w)) < CLIP_SAMPLES
                  else trim_onset(w)[:CLIP_SAMPLES] for w in waves]).astype(np.float32)
    fn = jax.jit(lambda w: front.power_to_db(front.melspectrogram(w, sample_rate=SAMPLE_RATE, n_fft=SYNTH_N_FFT,
                                                                  hop_length=SYNTH_HOP, n_mels=mels),
                                             top_db=SYNTH_TOP_DB))
    db = np.concatenate([np.asarray(fn(x[i:i + 256])) for i in range(0, len(x), 256)])[:, :frames]
    db = db - db.max(axis=(1, 2), keepdims=True)
    return (db / SYNTH_TOP_DB + 1.0).clip(0.0, 1.0).astype(np.float32)


def mel_to_wave(frames: np.ndarray, *, n_iter: int = 64, seed: int = 0) -> np.ndarray:
    """Griffin-Lim vocoder (``librosa``): ``[T, M]`` frames in :func:`synthesis_targets` units -> 8 kHz waveform.

    The output is peak-normalised to 0.9.  ``seed`` draws Griffin-Lim's initial phases.
    """
    try:
        import librosa
    except ImportError:
        raise ValueError("the Griffin-Lim vocoder needs librosa (pip install librosa)") from None
    frames = np.clip(np.asarray(frames, np.float64), 0.0, 1.0)
    power = 10.0 ** ((frames - 1.0) * SYNTH_TOP_DB / 10.0)  # [T, M], peak 1
    magnitude = librosa.feature.inverse.mel_to_stft(power.T, sr=SAMPLE_RATE, n_fft=SYNTH_N_FFT, power=2.0)
    wave = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=SYNTH_HOP, n_fft=SYNTH_N_FFT, init="random",
                              random_state=seed, length=(frames.shape[0] - 1) * SYNTH_HOP)
    return (0.9 * wave / max(np.abs(wave).max(), 1e-9)).astype(np.float32)


def load_fsdd(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``--data fsdd``: waveform classification ``{"inputs": [N, 8000], "label": [N]}``, or transcription.

    For a transcription model (``whisper_fsdd``) the entries are log-mel ``inputs [N, T, M]``
    (:func:`transcription_features`), ``decoder_input_ids`` and ``labels`` of the spoken word
    (``"seven"``) as characters.
    """
    del seed  # the split is fixed
    from zoo.registry import task_name

    task = task_name(model_config)
    directory, speaker = parse_args(name)
    if task == "transcription":
        if model_config.vocab_size < CHAR_VOCAB:
            raise ValueError(f"fsdd transcripts need vocab_size >= {CHAR_VOCAB} (characters); the model has "
                             f"{model_config.vocab_size}")
        rec = load_recordings(directory)
        train, test = split_masks(rec, speaker)
        arrays = transcription_arrays(transcription_features(rec.waves, tuple(model_config.input_shape)),
                                      rec.digits, model_config.target_length)
        return ArrayDataset(str(name), {k: v[train] for k, v in arrays.items()},
                            {k: v[test] for k, v in arrays.items()}, None, "sequence")
    if task == "speech_synthesis":
        rec = load_recordings(directory)
        train, test = split_masks(rec, speaker)
        if model_config.num_words != 10:
            raise ValueError(f"fsdd has 10 words; the model has num_words={model_config.num_words}")
        voices = sorted(set(rec.speakers.tolist()))
        if model_config.num_voices != len(voices):
            raise ValueError(f"fsdd has {len(voices)} voices {voices}; the model has num_voices="
                             f"{model_config.num_voices}")
        voice = np.array([voices.index(s) for s in rec.speakers], np.int32)
        inputs = np.stack([rec.digits, 10 + voice], 1).astype(np.int32)
        mels = synthesis_targets(rec.waves, model_config.frames, model_config.num_mels)
        return ArrayDataset(str(name), {"inputs": inputs[train], "mels": mels[train]},
                            {"inputs": inputs[test], "mels": mels[test]}, None, "tokens")
    if task != "classification":
        raise ValueError(f"fsdd serves spoken-digit classification, transcription or speech synthesis; the "
                         f"model's task is {task!r}")
    shape = tuple(model_config.input_shape)
    if model_config.layout != "vector" or len(shape) != 1:
        raise ValueError(f"fsdd serves 8 kHz waveforms [N, samples] (layout 'vector'); the model expects layout "
                         f"{model_config.layout!r} with input_shape {shape}")
    if model_config.num_classes != 10:
        raise ValueError(f"fsdd has 10 classes; the model has num_classes={model_config.num_classes}")
    rec = load_recordings(directory)
    train, test = split_masks(rec, speaker)
    x = clips(rec.waves, shape[0])
    return ArrayDataset.labelled(str(name), x[train], rec.digits[train], x[test], rec.digits[test], 10, "vector")


__all__ = ["mel_to_wave", "synthesis_targets", "trim_onset", "CHAR_VOCAB", "EOS_ID", "PAD_ID", "START_ID", "decode_text", "encode_text", "transcription_arrays",
           "transcription_features", "CLIP_SAMPLES", "DIGIT_WORDS", "Recordings", "SAMPLE_RATE", "TEST_INDICES", "clips", "default_directory",
           "fit_clip", "load_fsdd", "load_recordings", "parse_args", "parse_name", "read_wav", "split_masks"]
