"""Text datasets and tokenisers for the transformer families (no network needed).

Datasets (``load_text_dataset(name, model_config)``):

- ``"sentiment"``: 318 English sentences written for zoo (reviews of films,
  food, products, books, hotels, travel, services; 159 positive, 159
  negative), label 1 = positive.  The held-out split is fixed: every fifth
  sentence of each class (62 sentences); the other 256 train.  Text is
  tokenised with a WordPiece vocabulary built locally by ``tokenizers`` from
  the *training* sentences only (deterministic), as ``[CLS] ... [SEP]`` padded
  with ``[PAD]`` (id 0) to the model's ``input_shape``; the model masks the
  padding (``pad_token_id``).
- ``"sentiment:DIR"``: the same sentences tokenised with the Hugging Face
  tokenizer saved in local directory ``DIR`` (e.g. a pre-trained BERT's).
- ``"pydoc"``: byte-level language modelling on the English help text that
  ships with Python (``pydoc_data.topics``, ~465 KB): windows of ``T + 1``
  bytes, inputs the first ``T``, labels the last ``T`` (next byte); the first
  90% of the text trains, the last 10% is held out.
- ``"imdb"``, ``"sst2"``, ``"wikitext"``: online, through Hugging Face
  ``datasets``; a clear error when the package or the network is missing.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from zoo.data.pipeline import ArrayDataset

TEXT_DATASETS = ("sentiment", "pydoc", "imdb", "sst2", "wikitext")
_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_sentiment_texts() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """``(train_texts, train_labels, test_texts, test_labels)`` of the shipped set; labels 1 = positive."""
    splits = {"train": ([], []), "test": ([], [])}
    for label, file in ((1, "sentiment_pos.txt"), (0, "sentiment_neg.txt")):
        with open(os.path.join(_HERE, file), encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
        for i, line in enumerate(lines):
            texts, labels = splits["test" if i % 5 == 4 else "train"]
            texts.append(line)
            labels.append(label)
    (tr_x, tr_y), (te_x, te_y) = splits["train"], splits["test"]
    return tr_x, np.array(tr_y, np.int32), te_x, np.array(te_y, np.int32)


def build_wordpiece_tokenizer(texts, vocab_size: int = 2048, *, lowercase: bool = True):
    """A BERT-style WordPiece tokenizer for ``texts``, deterministic, as a ``transformers`` tokenizer.

    The vocabulary is built here rather than by ``tokenizers``' trainer, whose
    tie-breaking differs from run to run: the special tokens ``[PAD]`` (id 0),
    ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``; every character seen, alone and as a
    ``##`` continuation (so any word of those characters can be spelled); then the
    words of ``texts`` by falling frequency (ties alphabetical) up to ``vocab_size``.
    Normalisation, pre-tokenisation and WordPiece's greedy longest-match come from
    ``tokenizers``.  Save with ``tokenizer.save_pretrained(dir)``; :func:`load_tokenizer`
    reads it back.
    """
    from transformers import BertTokenizerFast

    tok = build_wordpiece_backend(texts, vocab_size, lowercase=lowercase)
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def build_wordpiece_backend(texts, vocab_size: int = 2048, *, lowercase: bool = True):
    """The ``tokenizers.Tokenizer`` of :func:`build_wordpiece_tokenizer` (same vocabulary and ids), without
    ``transformers``: ``encode(text).ids`` / ``.offsets`` (character spans in ``text``) are all a token tagger needs."""
    import collections

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts = collections.Counter(word for text in texts for word, _ in
                                 pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars]
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is too small for the {len(vocab)} special tokens and characters "
                         "of these texts")
    seen = set(vocab)
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in seen]
    vocab += words[:vocab_size - len(vocab)]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def load_tokenizer(path):
    """A Hugging Face tokenizer from local directory ``path`` (never the network).

    Raises:
      zoo.convert.hf.CheckpointFormatError: ``path`` is not a local directory (a Hub id
        such as ``"bert-base-uncased"`` gets a message saying to download it elsewhere).
    """
    from transformers import AutoTokenizer

    from zoo.convert.hf import resolve_dir

    return AutoTokenizer.from_pretrained(resolve_dir(path), local_files_only=True)


def encode(tokenizer, texts, max_length: int, *, truncate: bool = False) -> dict[str, np.ndarray]:
    """Tokenises ``texts`` to ``input_ids``, ``attention_mask``, ``token_type_ids``: int32 ``[N, max_length]``.

    Longer texts are an error unless ``truncate=True`` (then cut to ``max_length``).
    """
    texts = list(texts)
    enc = tokenizer(texts, padding="max_length", truncation=truncate, max_length=max_length,
                    return_token_type_ids=True)
    too_long = [t for t, ids in zip(texts, enc["input_ids"]) if len(ids) > max_length]
    if too_long:
        raise ValueError(f"{len(too_long)} text(s) need more than {max_length} tokens (the model's input_shape), "
                         f"e.g. {too_long[0]!r}; use a model with a longer input_shape")
    return {k: np.asarray(enc[k], np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}


@functools.lru_cache(maxsize=2)
def _sentiment_tokenizer(vocab_size: int):
    train_texts = load_sentiment_texts()[0]
    return build_wordpiece_tokenizer(train_texts, vocab_size)


def sentiment_tokenizer(vocab_size: int = 2048):
    """The WordPiece tokenizer the ``"sentiment"`` dataset uses (built from its training sentences)."""
    return _sentiment_tokenizer(vocab_size)


def _check_model(config, name: str, task: str) -> None:
    from zoo.registry import task_name

    if config.layout != "tokens" or task_name(config) != task:
        raise ValueError(f"dataset {name!r} serves token ids for task {task!r}; the model has layout "
                         f"{config.layout!r} and task {task_name(config)!r}")


def check_tokenizer_fits(tokenizer, config, name: str) -> None:
    """ValueError unless a ``transformers`` tokenizer's ids fit the model's ``vocab_size`` and its pad is
    ``pad_token_id``."""
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"the tokenizer of {name!r} has {len(tokenizer)} tokens, more than the model's vocab_size "
                         f"{config.vocab_size}")
    pad = getattr(config, "pad_token_id", None)
    if pad is not None and pad != tokenizer.pad_token_id:
        raise ValueError(f"the tokenizer pads with id {tokenizer.pad_token_id}, the model masks id {pad} "
                         "(pad_token_id); make them agree")


def _sentiment(name: str, config) -> ArrayDataset:
    _check_model(config, name, "classification")
    if config.num_classes != 2:
        raise ValueError(f"{name} has 2 classes (negative, positive); the model has num_classes={config.num_classes}")
    tokenizer = load_tokenizer(name.partition(":")[2]) if ":" in name else sentiment_tokenizer()
    check_tokenizer_fits(tokenizer, config, name)
    tr_x, tr_y, te_x, te_y = load_sentiment_texts()
    length = config.input_shape[0]
    return ArrayDataset.labelled(name, encode(tokenizer, tr_x, length)["input_ids"], tr_y,
                        encode(tokenizer, te_x, length)["input_ids"], te_y, 2, "tokens")


def load_pydoc_bytes() -> np.ndarray:
    """Python's own help topics (``pydoc_data.topics``) as a uint8 array of UTF-8 bytes."""
    from pydoc_data.topics import topics

    return np.frombuffer("\n\n".join(topics[k] for k in sorted(topics)).encode("utf-8"), np.uint8)


def byte_windows(data: np.ndarray, length: int) -> np.ndarray:
    """Windows ``[N, length + 1]`` int32 of the causal-LM task: the model reads the first ``length``
    bytes and predicts the last ``length``; window ``i`` starts at byte ``i * length``, so the
    predicted bytes of consecutive windows do not overlap."""
    n = (len(data) - 1) // length
    starts = np.arange(n)[:, None] * length
    return data[starts + np.arange(length + 1)].astype(np.int32)


def _pydoc(name: str, config) -> ArrayDataset:
    _check_model(config, name, "causal_lm")
    if config.vocab_size < 256:
        raise ValueError(f"{name} is byte-level (256 ids); the model has vocab_size={config.vocab_size}")
    data = load_pydoc_bytes()
    split = int(len(data) * 0.9)
    length = config.input_shape[0]
    return ArrayDataset(name, {"tokens": byte_windows(data[:split], length)},
                        {"tokens": byte_windows(data[split:], length)}, None, "tokens")


_HUB = {  # name: (path, config name, text column, train split, test split)
    "imdb": ("imdb", None, "text", "train", "test"),
    "sst2": ("glue", "sst2", "sentence", "train", "validation"),
    "wikitext": ("wikitext", "wikitext-2-raw-v1", "text", "train", "validation"),
}


def _online(name: str, config) -> ArrayDataset:
    try:
        import datasets
    except ImportError:
        raise ValueError(f"dataset {name!r} is downloaded through the Hugging Face `datasets` package, which is not "
                         "installed (pip install datasets; it also needs network access). Offline, use "
                         "'sentiment' or 'pydoc'") from None
    path, subset, column, train_split, test_split = _HUB[name]
    try:
        ds = datasets.load_dataset(path, subset)
    except Exception as e:  # no network, hub unreachable, dataset moved: one clear message
        raise ValueError(f"could not load {name!r} through Hugging Face datasets ({type(e).__name__}: {e}); it needs "
                         "network access. Offline, use 'sentiment' or 'pydoc'") from None
    if name == "wikitext":
        _check_model(config, name, "causal_lm")
        length = config.input_shape[0]
        splits = [np.frombuffer("".join(ds[s][column]).encode("utf-8"), np.uint8) for s in (train_split, test_split)]
        train, test = ({"tokens": byte_windows(d, length)} for d in splits)
        return ArrayDataset(name, train, test, None, "tokens")
    _check_model(config, name, "classification")
    train, test = ds[train_split], ds[test_split]
    tokenizer = build_wordpiece_tokenizer(train[column], min(config.vocab_size, 30522))
    length = config.input_shape[0]
    return ArrayDataset.labelled(name, encode(tokenizer, train[column], length, truncate=True)["input_ids"],
                        np.asarray(train["label"], np.int32),
                        encode(tokenizer, test[column], length, truncate=True)["input_ids"],
                        np.asarray(test["label"], np.int32), 2, "tokens")


def load_text_dataset(name: str, config, *, seed: int = 0) -> ArrayDataset:
    """Loads text dataset ``name`` (see the module docstring) for a model config."""
    del seed  # the splits are fixed
    if name in ("pydoc", "imdb", "sst2", "wikitext") and ":" in name:
        raise ValueError(f"{name.split(':')[0]} takes no arguments; got {name!r}")
    if name == "sentiment" or name.startswith("sentiment:"):
        return _sentiment(name, config)
    if name == "pydoc":
        return _pydoc(name, config)
    if name in ("imdb", "sst2", "wikitext"):
        return _online(name, config)
    raise ValueError(f"unknown text dataset {name!r}; available: {', '.join(TEXT_DATASETS)}, sentiment:DIR")


__all__ = ["TEXT_DATASETS", "build_wordpiece_backend", "build_wordpiece_tokenizer", "byte_windows", "check_tokenizer_fits",
           "encode", "load_pydoc_bytes", "load_sentiment_texts", "load_text_dataset", "load_tokenizer",
           "sentiment_tokenizer"]
