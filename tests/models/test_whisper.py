"""Whisper: parameter count of whisper-tiny, Hugging Face parity (logits and greedy decoding), round trip."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.models.whisper import greedy_decode
from zoo.tasks import word_error_rate

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_whisper_tiny_has_the_published_size():
    # openai/whisper-tiny: 37,760,640 parameters (d=384, 4+4 layers, 80 mels, 51,865 tokens, tied output)
    d, f, v, m = 384, 1536, 51865, 80
    ln = 2 * d
    attn = 4 * d * d + 3 * d  # q, k, v, out kernels; q, v, out biases (k has none)
    mlp = 2 * d * f + f + d
    encoder = (3 * m * d + d) + (3 * d * d + d) + 1500 * d + 4 * (2 * ln + attn + mlp) + ln
    decoder = v * d + 448 * d + 4 * (3 * ln + 2 * attn + mlp) + ln
    assert zoo.param_count("whisper_tiny") == encoder + decoder == 37_760_640


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    """A random tiny Hugging Face Whisper, saved and loaded into zoo."""
    config = transformers.WhisperConfig(
        vocab_size=60, num_mel_bins=16, encoder_layers=2, decoder_layers=2, d_model=32, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_source_positions=24,
        max_target_positions=20, decoder_start_token_id=1, pad_token_id=0, eos_token_id=2, bos_token_id=2,
        begin_suppress_tokens=None, suppress_tokens=None)
    torch.manual_seed(0)
    hf = transformers.WhisperForConditionalGeneration(config).eval()
    path = tmp_path_factory.mktemp("hf_whisper")
    hf.save_pretrained(path)
    model, variables = zoo.from_pretrained(path)
    return hf, model, variables, path


def test_logits_match_transformers(hf_pair):
    hf, model, variables, _ = hf_pair
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 16, 48)).astype(np.float32)  # HF [B, M, T]
    ids = rng.integers(0, 60, (2, 7))
    with torch.no_grad():
        ref = hf(input_features=torch.tensor(features), decoder_input_ids=torch.tensor(ids)).logits.numpy()
    ours = model.apply(variables, jnp.asarray(features.transpose(0, 2, 1)), decoder_input_ids=jnp.asarray(ids),
                       train=False)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)


def test_greedy_decoding_is_token_identical_to_transformers(hf_pair):
    hf, model, variables, _ = hf_pair
    features = np.random.default_rng(1).standard_normal((3, 16, 48)).astype(np.float32)
    with torch.no_grad():
        # transformers' generic greedy search (GenerationMixin), without Whisper's language / timestamp logic
        ref = transformers.GenerationMixin.generate(
            hf, input_features=torch.tensor(features), decoder_input_ids=torch.ones((3, 1), dtype=torch.long),
            max_length=12, do_sample=False, num_beams=1, eos_token_id=2, pad_token_id=0).numpy()
    ours = np.asarray(greedy_decode(model, variables, features.transpose(0, 2, 1), max_length=ref.shape[1]))
    np.testing.assert_array_equal(ours, ref)


def test_round_trip_through_save_pretrained(hf_pair, tmp_path):
    hf, model, variables, _ = hf_pair
    out = zoo.save_pretrained(model, variables, tmp_path / "out")
    back = transformers.WhisperForConditionalGeneration.from_pretrained(out).eval()
    for (name, a), (_, b) in zip(hf.state_dict().items(), back.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    model2, variables2 = zoo.from_pretrained(out)
    chex.assert_trees_all_equal(variables, variables2)


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError, match=r"input_shape must be \(2 \* max_source_positions, num_mel_bins\) = "
                                         r"\(64, 16\)"):
        zoo.create_model("whisper_micro", input_shape=(60, 16))
    with pytest.raises(ValueError, match="target_length 40 exceeds max_target_positions 16"):
        zoo.create_model("whisper_micro", target_length=40)
    model = zoo.create_model("whisper_micro")
    variables = zoo.init_variables(model, jax.random.key(0))
    with pytest.raises(ValueError, match=r"decoder_input_ids must be int \[B, L\] with L <= max_target_positions"):
        model.apply(variables, jnp.zeros((1, 64, 16)), decoder_input_ids=jnp.zeros((1, 30), jnp.int32))
    with pytest.raises(ValueError, match=r"max_length must be in \(1, max_target_positions=16\]"):
        greedy_decode(model, variables, jnp.zeros((1, 64, 16)), max_length=40)


def test_word_error_rate():
    assert word_error_rate(["seven", "one two"], ["seven", "one"]) == pytest.approx(1 / 3)
    assert word_error_rate(["a b c"], ["a x c d"]) == pytest.approx(2 / 3)  # one substitution, one insertion
