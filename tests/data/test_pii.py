"""The generated PII sentences: determinism, exact entity spans, BIO tags on tokens, the unseen held-out split."""

import numpy as np
import pytest

from zoo.data import pii
from zoo.techniques.deidentify import replace_entities


@pytest.fixture(scope="module")
def small():
    train, test = pii.pii_corpus(300, 100, 0)
    return train, test, pii.pii_tokenizer(300, 0, 4096)


def _skeleton(sentence):
    """The sentence with its entities replaced by ``[TYPE]``: its template with the slots marked."""
    return replace_entities(sentence.text, sentence.spans)


def test_generation_is_deterministic_and_seeded():
    a, b = pii.generate_sentences("train", 40, seed=3), pii.generate_sentences("train", 40, seed=3)
    assert a == b
    assert a != pii.generate_sentences("train", 40, seed=4)
    assert pii.generate_sentences("train", 10, seed=3) == a[:10]  # sentence i depends on (seed, split, i) alone


def test_spans_cover_exactly_the_entities(small):
    train, test, _ = small
    kinds = set()
    for s in train + test:
        skeleton = _skeleton(s)  # the text outside the spans, with the entities as [TYPE]
        template = (pii.TRAIN_TEMPLATES if s in train else pii.TEST_TEMPLATES)[s.template]
        slots = [m.group(1) for m in pii._SLOT.finditer(template)]
        kinds_in_order = [k for _, _, k in s.spans]
        assert kinds_in_order == slots if s in test else kinds_in_order[:len(slots)] == slots  # (+ a 2nd template)
        if s in test:  # held-out sentences are their template, character for character
            assert skeleton == template.replace("{", "[").replace("}", "]")
        for (start, end, kind), (next_start, _, _) in zip(s.spans, s.spans[1:] + ((len(s.text) + 1, 0, ""),)):
            assert 0 <= start < end <= next_start and s.text[start:end].strip() == s.text[start:end]
            kinds.add(kind)
    assert kinds == set(pii.ENTITY_TYPES)


def test_training_wording_varies_around_the_slots():
    rng = np.random.default_rng(0)
    template = "Please contact {NAME} at {EMAIL} or call {PHONE}."
    varied = [pii._vary_words(template, rng) for _ in range(200)]
    assert all(v.count("{NAME}") == v.count("{EMAIL}") == v.count("{PHONE}") == 1 for v in varied)
    kept = np.mean([w in v.split() for v in varied for w in ("Please", "contact", "call")])
    assert 0.65 < kept < 0.85  # each word swapped with probability 1/4


def test_training_fillers_hold_no_entities(small):
    train, test, _ = small
    fillers = set(pii._fillers())
    with_filler = [s for s in train if any(s.text.startswith(f + " ") or s.text.endswith(" " + f) for f in fillers)]
    assert 0.5 < len(with_filler) / len(train) < 0.8
    for s in with_filler:  # the filler's characters hold no entity
        f = next(f for f in fillers if s.text.startswith(f + " ") or s.text.endswith(" " + f))
        lo, hi = (len(f) + 1, len(s.text)) if s.text.startswith(f + " ") else (0, len(s.text) - len(f) - 1)
        assert all(lo <= a and b <= hi for a, b, _ in s.spans)
    assert all(_skeleton(s) in {t.replace("{", "[").replace("}", "]") for t in pii.TEST_TEMPLATES} for s in test)


def test_held_out_split_shares_no_template_or_locale(small):
    train, test, _ = small
    assert not set(pii.TRAIN_TEMPLATES) & set(pii.TEST_TEMPLATES)
    assert not set(pii.TRAIN_LOCALES) & set(pii.TEST_LOCALES)
    train_skeletons = {_skeleton(s) for s in train}
    for s in test:
        assert s.locale in pii.TEST_LOCALES and _skeleton(s) not in train_skeletons
        assert _skeleton(s) == replace_entities(*pii.render(pii.TEST_TEMPLATES[s.template],
                                                            {k: [k.lower()] * 3 for k in pii.ENTITY_TYPES}))
    assert {s.locale for s in train} == set(pii.TRAIN_LOCALES)


def test_tags_on_words_give_back_the_spans(small):
    train, test, tokenizer = small
    for s in train + test:
        offsets, _ = pii.words(tokenizer.encode(s.text, add_special_tokens=False))
        tags = pii.tags_from_spans(offsets, s.spans)
        assert pii.spans_from_tags(offsets, tags) == list(s.spans)
        first = {i for i, (a, b) in enumerate(offsets) for start, _, _ in s.spans if a == start}
        assert {i for i, t in enumerate(tags) if t.startswith("B-")} == first  # entities start on word boundaries


def test_hand_checked_alignment():
    text = "Call Ana Lima at 555-0101."
    offsets = [(0, 4), (5, 8), (9, 13), (14, 16), (17, 20), (20, 21), (21, 25), (25, 26)]
    spans = [(5, 13, "NAME"), (17, 25, "PHONE")]
    tags = pii.tags_from_spans(offsets, spans)
    assert tags == ["O", "B-NAME", "I-NAME", "O", "B-PHONE", "I-PHONE", "I-PHONE", "O"]
    assert [text[a:b] for a, b, _ in pii.spans_from_tags(offsets, tags)] == ["Ana Lima", "555-0101"]
    # a stray I- opens an entity; an O ends one; empty (special) tokens are skipped
    assert pii.spans_from_tags([(0, 0), (0, 4), (5, 8), (9, 13)], ["O", "I-NAME", "O", "I-NAME"]) == \
        [(0, 4, "NAME"), (9, 13, "NAME")]


def test_windows_split_long_sentences_in_order(small):
    train, _, tokenizer = small
    long = max(train, key=lambda s: len(s.text))
    ids, labels = pii.encode_tagged(tokenizer, [long], 12)
    enc = tokenizer.encode(long.text, add_special_tokens=False)
    assert len(ids) == -(-len(enc.ids) // 10) > 1
    assert (ids[:, 0] == tokenizer.token_to_id("[CLS]")).all()
    special = (ids == 0) | (ids == tokenizer.token_to_id("[CLS]")) | (ids == tokenizer.token_to_id("[SEP]"))
    np.testing.assert_array_equal(ids[~special], enc.ids)
    offsets, first = pii.words(enc)
    expected = [pii.LABEL_IDS[t] for t in pii.tags_from_spans(offsets, long.spans)]
    np.testing.assert_array_equal(labels[labels != pii.IGNORE_INDEX], expected)  # one tag per word, in order
    np.testing.assert_array_equal(np.flatnonzero(labels[~special] != pii.IGNORE_INDEX), first)


def test_loader_checks_the_model_and_the_name():
    from zoo.data import load_dataset
    from zoo.registry import get_config

    config = get_config("bert_pii")
    ds = load_dataset("pii:train=60,test=20", config)
    assert ds.num_classes == 13 and ds.train["inputs"].shape[1:] == (64,) and ds.num_test >= 20
    with pytest.raises(ValueError, match="13 BIO tags"):
        load_dataset("pii:train=60", get_config("bert_pii").__class__(**{**vars(config), "num_classes": 5}))
    with pytest.raises(ValueError, match="token_classification"):
        load_dataset("pii", get_config("bert_nano"))
    for bad in ("pii:train=0", "pii:size=3", "pii:train"):
        with pytest.raises(ValueError, match="pii takes train=N,test=M"):
            pii.parse_name(bad)
