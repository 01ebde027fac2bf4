"""Text datasets and tokenisers: the shipped sentiment set, WordPiece built locally, pydoc bytes, exact resume."""

import chex
import numpy as np
import pytest
import transformers

import zoo
from zoo.data import load_dataset
from zoo.data import text
from zoo.convert import CheckpointFormatError
from zoo.train import Checkpointer, OptimizerConfig, TrainConfig, load_run, train_and_evaluate


def test_sentiment_set_is_balanced_with_a_fixed_held_out_split():
    tr_x, tr_y, te_x, te_y = text.load_sentiment_texts()
    assert (len(tr_x), len(te_x)) == (256, 62)
    assert tr_y.mean() == te_y.mean() == 0.5
    assert not set(tr_x) & set(te_x) and len(set(tr_x) | set(te_x)) == 318  # no duplicates, no leakage
    assert te_x[0] == "This is one of the best documentaries I have ever seen." and te_y[0] == 1  # line 5


def test_wordpiece_is_deterministic_and_round_trips_through_a_local_directory(tmp_path):
    texts = text.load_sentiment_texts()[0]
    a, b = text.build_wordpiece_tokenizer(texts, 600), text.build_wordpiece_tokenizer(texts, 600)
    assert a.get_vocab() == b.get_vocab() and len(a) == 600
    # unseen words are spelled with ## pieces, never [UNK], when their characters were seen
    pieces = a.tokenize("Unbelievably wonderful")
    assert "[UNK]" not in pieces and "".join(p.removeprefix("##") for p in pieces) == "unbelievablywonderful"
    assert a.pad_token_id == 0 and a.convert_ids_to_tokens([0, 1, 2, 3]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    a.save_pretrained(tmp_path)
    loaded = text.load_tokenizer(tmp_path)
    assert isinstance(loaded, transformers.PreTrainedTokenizerBase)
    enc = text.encode(loaded, ["The pasta was wonderful!", "Awful."], 12)
    np.testing.assert_array_equal(enc["input_ids"], text.encode(a, ["The pasta was wonderful!", "Awful."],
                                                                12)["input_ids"])
    assert enc["input_ids"][1, 0] == 2 and enc["attention_mask"][1].tolist() == [1, 1, 1, 1] + [0] * 8
    np.testing.assert_array_equal(enc["input_ids"] == 0, enc["attention_mask"] == 0)
    with pytest.raises(ValueError, match="need more than 3 tokens"):
        text.encode(loaded, ["a much longer sentence"], 3)
    with pytest.raises(CheckpointFormatError, match="no network"):
        text.load_tokenizer("bert-base-uncased")


def test_sentiment_dataset_for_a_bert_and_its_checks(tmp_path):
    config = zoo.get_config("bert_nano")
    data = load_dataset("sentiment", config)
    chex.assert_shape(data.train["inputs"], (256, 64))
    assert data.train["inputs"].dtype == np.int32 and np.all(data.train["inputs"][:, 0] == 2)  # [CLS] first
    # "sentiment:DIR" tokenises with a saved tokenizer (here: the same vocabulary, so the same ids)
    text.sentiment_tokenizer().save_pretrained(tmp_path)
    np.testing.assert_array_equal(load_dataset(f"sentiment:{tmp_path}", config).test["inputs"],
                                  data.test["inputs"])
    with pytest.raises(ValueError, match="serves token ids for task 'classification'; the model has layout 'image'"):
        load_dataset("sentiment", zoo.get_config("seed_cnn"))
    with pytest.raises(ValueError, match="has 787 tokens, more than the model's vocab_size 500"):
        load_dataset("sentiment", zoo.get_config("bert_nano", vocab_size=500))
    with pytest.raises(ValueError, match="need more than 8 tokens"):
        load_dataset("sentiment", zoo.get_config("bert_nano", input_shape=(8,)))


def test_pydoc_bytes_are_next_byte_windows():
    data = load_dataset("pydoc", zoo.get_config("gpt2_tiny", input_shape=(64,)))
    raw = text.load_pydoc_bytes()
    assert len(raw) > 400_000
    tokens = data.train["tokens"]  # [N, 65]: the model reads the first 64 bytes and predicts the last 64
    assert set(data.train) == {"tokens"} and tokens.shape[1] == 65
    np.testing.assert_array_equal(tokens[1], raw[64:129])
    np.testing.assert_array_equal(tokens[:-1, -1], tokens[1:, 0])  # predicted bytes of windows do not overlap
    assert tokens.shape[0] == (int(len(raw) * 0.9) - 1) // 64
    with pytest.raises(ValueError, match="serves token ids for task 'causal_lm'"):
        load_dataset("pydoc", zoo.get_config("bert_nano"))


def test_online_datasets_fail_clearly_offline():
    with pytest.raises(ValueError, match=r"Hugging Face `datasets` package.*Offline, use 'sentiment' or 'pydoc'"):
        load_dataset("imdb", zoo.get_config("bert_nano"))


@pytest.mark.parametrize("model, data, overrides", [
    ("gpt2_tiny", "pydoc", {"input_shape": (32,), "num_layers": 1, "hidden_size": 32}),
])  # the classification path (BERT on sentiment) resumes through the CLI test in tests/test_transformer_examples.py
def test_token_models_resume_exactly(tmp_path, model, data, overrides):
    config = TrainConfig(model=model, model_overrides=overrides, data=data, steps=6, batch_size=8,
                         checkpoint_every=3, log_every=3, optimizer=OptimizerConfig(name="adamw", learning_rate=1e-3,
                                                                                   schedule="cosine"))
    full = train_and_evaluate(config, str(tmp_path / "a"), progress=False)
    train_and_evaluate(config, str(tmp_path / "b"), progress=False, stop_after=3)
    rest = train_and_evaluate(config, str(tmp_path / "b"), progress=False)
    assert rest["resumed_from"] == 3 and full["test_loss"] == rest["test_loss"]
    # the causal-LM task reports perplexity and keeps the best checkpoint by it (lower is better)
    assert full["task"] == "causal_lm" and full["test_perplexity"] == rest["test_perplexity"]
    np.testing.assert_allclose(full["test_perplexity"], np.exp(full["test_loss"]), rtol=1e-9)
    meta = Checkpointer(str(tmp_path / "a" / "checkpoints"), async_save=False)
    try:
        assert meta.read_meta(6)["best_metric"] == "test_perplexity"
    finally:
        meta.close()
    chex.assert_trees_all_equal(load_run(str(tmp_path / "a"))[1].params, load_run(str(tmp_path / "b"))[1].params)
