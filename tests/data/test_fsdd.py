"""FSDD loading: names, splits, clear one-line errors naming the file."""

import os

import numpy as np
import pytest

import zoo
from zoo.data import audio, load_dataset

soundfile = pytest.importorskip("soundfile")
FSDD = audio.default_directory()
needs_fsdd = pytest.mark.skipif(not os.path.isdir(FSDD) and not os.environ.get("CI"), reason=f"FSDD is not at {FSDD} (../shared/data/fsdd)")


@pytest.fixture(scope="module")
def small_fsdd(tmp_path_factory):
    """The first 7 recordings of every digit and speaker (420 real files) copied to a directory."""
    if not os.path.isdir(FSDD):
        if os.environ.get("CI"):  # CI has ../shared: its absence there is a failure, not a skip
            pytest.fail(f"FSDD is not at {FSDD}")
        pytest.skip(f"FSDD is not at {FSDD}")
    out = tmp_path_factory.mktemp("fsdd")
    for name in os.listdir(FSDD):
        digit, speaker, index = audio.parse_name(name)
        if index < 7:
            os.symlink(os.path.join(FSDD, name), out / name)
    return str(out)


@needs_fsdd
def test_fsdd_standard_and_speaker_splits(small_fsdd):
    model = zoo.create_model("kws_tiny")
    data = load_dataset(f"fsdd:{small_fsdd}", model.config)
    # 10 digits x 6 speakers: indices 0-4 test (300), 5-6 train (120); clips of input_shape (2000,) samples
    assert data.num_test == 300 and data.num_train == 120
    assert data.train["inputs"].shape == (120, 2000) and data.train["inputs"].dtype == np.float32
    assert np.bincount(data.test["label"]).tolist() == [30] * 10
    assert np.abs(data.train["inputs"]).max() <= 1.0
    held = load_dataset(f"fsdd:{small_fsdd},speaker=jackson", model.config)
    assert held.num_test == 70 and held.num_train == 350
    rec = audio.load_recordings(small_fsdd)
    assert sorted(set(rec.speakers)) == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    with pytest.raises(ValueError, match=r"unknown speaker 'bob'; the recordings have speakers \['george'"):
        load_dataset(f"fsdd:{small_fsdd},speaker=bob", model.config)
    with pytest.raises(ValueError, match="fsdd has 10 classes; the model has num_classes=3"):
        load_dataset(f"fsdd:{small_fsdd}", zoo.get_config("kws_tiny", num_classes=3))
    with pytest.raises(ValueError, match="fsdd serves 8 kHz waveforms"):
        load_dataset(f"fsdd:{small_fsdd}", zoo.get_config("seed_cnn"))


def test_fit_clip_pads_and_keeps_the_middle():
    np.testing.assert_array_equal(audio.fit_clip(np.arange(1, 4, dtype=np.float32), 5), [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(audio.fit_clip(np.arange(10, dtype=np.float32), 4), [3, 4, 5, 6])


def _write(path, data, rate=8000):
    soundfile.write(path, data, rate)
    return str(path)


def test_bad_files_get_one_line_errors_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=f"FSDD directory '{missing}' does not exist"):
        audio.load_recordings(missing)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="holds no .wav files"):
        audio.load_recordings(tmp_path / "empty_dir")
    tone = np.sin(np.arange(800) / 5.0).astype(np.float32) * 0.1
    cases = {
        "16k": (_write(tmp_path / "1_ann_0.wav", tone, 16000), r"1_ann_0.wav: sample rate 16000 Hz; FSDD is 8000 Hz"),
        "stereo": (_write(tmp_path / "2_ann_0.wav", np.stack([tone, tone], 1)), r"2_ann_0.wav: 2 channels"),
        "empty": (_write(tmp_path / "3_ann_0.wav", np.zeros((0,), np.float32)), r"3_ann_0.wav: empty recording"),
    }
    for file, message in cases.values():
        with pytest.raises(ValueError, match=message):
            audio.read_wav(file)
    garbage = tmp_path / "4_ann_0.wav"
    garbage.write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="4_ann_0.wav: not a readable WAV file"):
        audio.read_wav(str(garbage))
    with pytest.raises(ValueError, match=r"seven.wav: name does not parse as FSDD's \{digit\}_\{speaker\}_\{index\}"):
        audio.parse_name(str(tmp_path / "seven.wav"))
    good = tmp_path / "good"
    good.mkdir()
    _write(good / "5_ann_0.wav", tone)
    _write(good / "hello.wav", tone)
    with pytest.raises(ValueError, match="hello.wav: name does not parse"):
        audio.load_recordings(good)
    with pytest.raises(ValueError, match="fsdd takes DIR and speaker=NAME; got 'split=3'"):
        audio.parse_args("fsdd:split=3")


def test_transcripts_as_characters_and_teacher_forcing():
    ids = audio.encode_text("seven", 8)
    assert ids.tolist() == [3 + 18, 3 + 4, 3 + 21, 3 + 4, 3 + 13, audio.EOS_ID, audio.PAD_ID, audio.PAD_ID]
    assert audio.decode_text(ids) == "seven"
    arrays = audio.transcription_arrays(np.zeros((2, 100, 40), np.float32), np.array([7, 0]), 8)
    assert arrays["decoder_input_ids"][0].tolist() == [audio.START_ID, *ids[:5], 0, 0]
    assert arrays["labels"][1].tolist() == [*audio.encode_text("zero", 8)[:5], -100, -100, -100]
    with pytest.raises(ValueError, match="'seventeen' needs 10 tokens with EOS; the model's target_length is 8"):
        audio.encode_text("seventeen", 8)
