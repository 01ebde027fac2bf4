"""Translation and docstring data: held out by value / module, a deterministic tokenizer, clear errors."""

import numpy as np
import pytest

import zoo
from zoo.data import load_dataset, seq2seq

CONFIG = zoo.get_config("t5_tiny")


@pytest.fixture(scope="module")
def en_de():
    return load_dataset("translate:en-de", CONFIG)


def test_translation_is_held_out_by_value(en_de):
    train, test = seq2seq.translation_pairs("en", "de")
    assert en_de.num_train == len(train) > 20_000 and en_de.num_test == len(test) > 1_000
    assert not {s for s, _ in test} & {s for s, _ in train}  # no test source sentence occurs in training
    values = seq2seq.translation_values()
    held = [v for v in values if seq2seq._held_out(v)]
    assert 0.03 < len(held) / len(values) < 0.07
    held_numbers = {n for kind, n in held if kind == "cardinal"}
    rendered = {seq2seq.normalize(seq2seq._render("cardinal", n, "en")) for n in held_numbers}
    assert rendered <= {s for s, _ in test} and not rendered & {s for s, _ in train}
    kinds = {kind for kind, _ in held}
    assert kinds == {"cardinal", "ordinal", "date", "time", "money"}
    # what the locale libraries render: German dates, French amounts (CLDR's narrow no-break space normalised)
    assert ("Friday, March 5, 2021", "Freitag, 5. März 2021") == (
        seq2seq.normalize(seq2seq._render("date", (2021, 3, 5), "en")),
        seq2seq.normalize(seq2seq._render("date", (2021, 3, 5), "de")))
    assert seq2seq.normalize(seq2seq._render("money", (123450, "EUR"), "fr")) == "1 234,50 €"


def test_a_second_language_pair():
    train, test = seq2seq.translation_pairs("de", "fr")
    assert ("null", "zéro") in train + test and len(test) > 1_000
    assert dict(train + test)["viertausendsiebenhunderteinundzwanzig"] == "quatre mille sept cent vingt et un"


def test_the_tokenizer_is_learnt_deterministically_from_the_training_side(en_de):
    train, _ = seq2seq.translation_pairs("en", "de")
    texts = [t for pair in train[::7] for t in pair]
    a, b = seq2seq.train_bpe_tokenizer(texts, 300), seq2seq.train_bpe_tokenizer(list(texts), 300)
    assert a.to_str() == b.to_str() and a.get_vocab_size() == 300
    sample = ["Freitag, 5. März 2021", "1.966,18 $"]
    assert [e.ids for e in a.encode_batch(sample)] == [e.ids for e in b.encode_batch(sample)]
    assert [a.id_to_token(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    # digits are single tokens, and the ids round-trip to the text
    tok = en_de.text.tokenizer
    assert all(len(t) == 1 for t in (tok.id_to_token(i) for i in tok.encode("1234567890").ids) if t.isdigit())
    labels = en_de.test["labels"]
    decoded = [en_de.text.decode(np.where(row < 0, 0, row)) for row in labels[:200]]
    assert decoded == list(en_de.text.test_targets[:200])
    assert (en_de.train["inputs"][en_de.train["attention_mask"] == 0] == 0).all()


def test_long_sources_are_cut_or_refused_and_empty_targets_refused(en_de):
    tok = en_de.text.tokenizer
    long = "Friday, March 5, 2021 and " * 10
    cut = seq2seq.encode_pairs(tok, [long], ["Freitag"], 16, 8)
    assert cut["attention_mask"].sum() == 16 and cut["inputs"][0, -1] == 1  # kept its </s>
    with pytest.raises(ValueError, match="source has .* tokens, more than the model's 16 .*long=truncate"):
        seq2seq.encode_pairs(tok, [long], ["Freitag"], 16, 8, long="refuse")
    with pytest.raises(ValueError, match="example 1 has an empty target"):
        seq2seq.encode_pairs(tok, ["zero", "one"], ["null", ""], 16, 8)
    with pytest.raises(ValueError, match="source has .* more than the model's 64"):
        load_dataset("docstrings:long=refuse", zoo.get_config("t5_tiny", task="summarization"))


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(en_de, tmp_path):
    with pytest.raises(ValueError, match="the tokenizer has 512 ids but t5_small_cut has vocab_size=300"):
        seq2seq.check_vocabulary(en_de.text.tokenizer, 300, model="t5_small_cut")
    en_de.text.tokenizer.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="the tokenizer has 512 ids but t5_tiny has vocab_size=256"):
        load_dataset(f"translate:en-de,tokenizer={tmp_path}", zoo.get_config("t5_tiny", vocab_size=256))
    same = load_dataset(f"translate:en-de,tokenizer={tmp_path}", CONFIG)
    np.testing.assert_array_equal(same.test["labels"], en_de.test["labels"])


def test_docstrings_are_split_by_module():
    train, test, held = seq2seq.docstring_pairs()
    assert len(train) > 1000 and len(test) > 100 and "math" in held
    names = {s.split("(")[0] for s, _ in test}
    assert "def nlargest" in names  # heapq is held out
    assert not {s for s, _ in test} & {s for s, _ in train}
    source, summary = next(p for p in test if p[0].startswith("def nlargest"))
    assert summary == "Find the n largest elements in a dataset."
    assert seq2seq.lead_sentence("Return x. Then y.") == "Return x."
    ds = load_dataset("docstrings", zoo.get_config("t5_tiny", task="summarization", input_shape=(128,),
                                                   target_length=48))
    assert ds.num_test == len(test) and ds.text.test_targets[0] == test[0][1]


@pytest.mark.parametrize("name, config, message", [
    ("translate:en-xx", CONFIG, r"translate knows languages \('en', 'de', 'fr', 'es', 'it'\), got 'xx'"),
    ("translate:en-en", CONFIG, "two different languages"),
    ("translate:en-de,size=3", CONFIG, r"options long=truncate\|refuse and tokenizer=DIR; got \['size'\]"),
    ("docstrings", CONFIG, r"docstrings serves task 'summarization'; .*--set task=summarization"),
    ("translate", zoo.get_config("mlp"), "translate serves task 'translation'"),
])
def test_bad_names_and_models_are_errors(name, config, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(name, config)
