"""Real text corpora read from local files in their published formats (never the network).

Datasets (``load_dataset(name, model_config)``; ``DIR`` is a local directory, searched
recursively):

- ``"wmt:DIR,pair=SRC-TGT"``: WMT as Hugging Face ``datasets`` publishes it (``wmt14``,
  ``wmt16``, ``wmt19``, ...): Parquet files (``de-en/train-00000-of-00003.parquet``, or the
  Hub's ``de-en/train/0000.parquet``) or Arrow files (``datasets``' ``save_to_disk``
  directories ``train/data-00000-of-00001.arrow``, its cache's ``wmt14-train.arrow``), with a
  ``translation`` column of ``{language: text}``.  ``pair`` says which way to translate (it
  may be left out when the files hold one language pair and ``SRC-TGT`` is its first-then-
  second order of the config directory, e.g. ``de-en``).  Task ``translation``.
- ``"cnn_dailymail:DIR"``: CNN/DailyMail (``abisee/cnn_dailymail``, ``3.0.0/train-*.parquet``):
  columns ``article`` -> ``highlights``.  Task ``summarization``.
- ``"xsum:DIR"``: XSum (``EdinburghNLP/xsum``): columns ``document`` -> ``summary``.  Task
  ``summarization``.
- ``"squad:DIR"``: SQuAD JSON, v1.1 or v2.0 (``train-v1.1.json`` / ``dev-v1.1.json``,
  ``train-v2.0.json`` / ``dev-v2.0.json``), for BERT's ``question_answering`` head.

Splits: a file belongs to ``train``, ``validation`` or ``test`` by a word of its path below
``DIR`` (``train-00000-of-00003.parquet``, ``test/0000.parquet``, ``wmt14-validation.arrow``;
SQuAD's ``dev`` is its test split).  The seq2seq corpora are trained on ``train`` and scored on
``test`` (``validation`` when there is no test file); test examples whose source also occurs
in training are left out, as for the generated sets.

Options after ``DIR``, comma-separated: ``limit=N`` reads at most the first N examples of each
split (a tokenizer learnt in Python from millions of sentences takes long); ``tokenizer=DIR``
(a Hugging Face checkpoint's ``tokenizer.json``: T5's for the seq2seq corpora, BERT's for
SQuAD) instead of learning one from the training side; for the seq2seq corpora ``long=truncate``
(default: sources *and* targets longer than the model's lengths are cut, keeping ``</s>``) or
``long=refuse`` (an error naming the example), and ``empty=refuse`` (default: an example with
an empty source or target is an error naming its file and row) or ``empty=skip`` (left out).
Parquet and Arrow are read with ``pyarrow`` (``pip install "zoo[corpora]"``).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from zoo.data import seq2seq
from zoo.data.pipeline import ArrayDataset

SPLITS = ("train", "validation", "test")
_SPLIT_WORDS = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
                "test": "test"}
TABLE_SUFFIXES = (".parquet", ".arrow")
SUMMARIZATION_COLUMNS = {"cnn_dailymail": ("article", "highlights"), "xsum": ("document", "summary")}
CORPORA = ("wmt", "cnn_dailymail", "xsum", "squad")
_SEQ2SEQ_OPTIONS = {"long": "long=truncate|refuse", "tokenizer": "tokenizer=DIR", "limit": "limit=N",
                    "empty": "empty=refuse|skip"}


def split_files(directory: str, suffixes: tuple[str, ...]) -> dict[str, list[str]]:
    """``{split: [paths]}`` of the files under ``directory`` ending in ``suffixes``, by a split word in their path.

    A path's words are its parts below ``directory`` split at ``-``, ``_``, ``.`` and ``/``; the
    last split word wins (``partial-train/0000.parquet`` is train).  Files without one are ignored.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"{directory} is not a directory (expected the local folder of the corpus' files)")
    found: dict[str, list[str]] = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.endswith(suffixes):
                continue
            path = os.path.join(root, file)
            words = re.split(r"[-_./\\]", os.path.relpath(path, directory).lower())
            split = [_SPLIT_WORDS[w] for w in words if w in _SPLIT_WORDS]
            if split:
                found.setdefault(split[-1], []).append(path)
    return found


def read_table(path: str):
    """A ``pyarrow.Table`` from a Parquet file or an Arrow IPC file (stream format, as ``datasets`` writes, or file)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"reading {path} needs pyarrow (pip install pyarrow, or zoo[corpora])") from None
    try:
        if path.endswith(".parquet"):
            return pq.read_table(path)
        with pa.memory_map(path) as source:
            try:
                return pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_file(source).read_all()
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"{path} is not a readable {os.path.splitext(path)[1][1:]} file: {e}") from None


def _rows(name: str, files: list[str], columns: tuple[str, ...], limit: int | None) -> list[tuple]:
    """``(file, row, *values)`` of ``columns`` over ``files`` in order, at most ``limit``."""
    out = []
    for path in files:
        table = read_table(path)
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ValueError(f"{name}: {path} has no column {missing[0]!r} (expected {list(columns)}, found "
                             f"{table.column_names})")
        if limit is not None:
            table = table.slice(0, max(limit - len(out), 0))
        values = [table.column(c).to_pylist() for c in columns]
        out += [(path, i, *row) for i, row in enumerate(zip(*values))]
        if limit is not None and len(out) >= limit:
            break
    return out


def _limit(name: str, options: dict) -> int | None:
    value = options.get("limit")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}: limit must be a positive integer, got {value!r}")
    return int(value)


def _directory(name: str, base: str, positional: str | None) -> str:
    if not positional:
        raise ValueError(f"{base} reads local files: pass the directory as {base}:DIR (got {name!r})")
    return positional


def _train_test(name: str, base: str, files: dict, suffixes) -> tuple[list[str], list[str], str]:
    test_split = "test" if "test" in files else "validation"
    if "train" not in files or test_split not in files:
        have = {k: len(v) for k, v in files.items()}
        raise ValueError(f"{base}: {name!r} needs train and test (or validation) files ending in "
                         f"{' or '.join(suffixes)}, named by their split (e.g. train-00000-of-00001.parquet); found "
                         f"{have or 'none'}")
    return files["train"], files[test_split], test_split


def _pairs(name: str, rows: list[tuple], empty: str, what: tuple[str, str]) -> list[tuple[str, str]]:
    out = []
    for path, i, source, target in rows:
        source, target = seq2seq.normalize(source or ""), seq2seq.normalize(target or "")
        if not source or not target:
            if empty == "skip":
                continue
            side = what[0] if not source else what[1]
            raise ValueError(f"{name}: row {i} of {path} has an empty {side}; pass empty=skip to leave such rows out")
        out.append((source, target))
    return out


def _seq2seq_dataset(name: str, config, base: str, train_rows, test_rows, options, what) -> ArrayDataset:
    empty = options.get("empty", "refuse")
    if empty not in ("refuse", "skip"):
        raise ValueError(f"{base}: empty must be refuse or skip, got {empty!r}")
    train, test = _pairs(name, train_rows, empty, what), _pairs(name, test_rows, empty, what)
    seen = {s for s, _ in train}
    test = [p for p in test if p[0] not in seen]
    if not train or not test:
        raise ValueError(f"{name}: no {'training' if not train else 'test'} examples left")
    return seq2seq._dataset(str(name), config, train, test, options.get("long", "truncate"), options.get("tokenizer"),
                            long_targets=options.get("long", "truncate"))


def load_wmt(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``wmt:DIR[,pair=SRC-TGT]``: see the module docstring."""
    del seed  # the splits are the files'
    positional, options = seq2seq._parse(name, None, {**_SEQ2SEQ_OPTIONS, "pair": "pair=SRC-TGT"})
    directory = _directory(name, "wmt", positional)
    seq2seq._check_model(model_config, "wmt", ("translation",))
    files = split_files(directory, TABLE_SUFFIXES)
    train_files, test_files, _ = _train_test(name, "wmt", files, TABLE_SUFFIXES)
    limit = _limit(name, options)
    train_rows = _rows(name, train_files, ("translation",), limit)
    test_rows = _rows(name, test_files, ("translation",), limit)
    languages = sorted({lang for _, _, row in train_rows[:1000] for lang in (row or {})})
    pair = options.get("pair")
    if pair is None:
        config_dirs = {os.path.relpath(p, directory).split(os.sep)[0] for p in train_files}
        guess = [d for d in config_dirs if d.count("-") == 1 and sorted(d.split("-")) == languages]
        if len(guess) != 1:
            raise ValueError(f"{name}: the files hold translations between {languages}; say which way with "
                             f"pair=SRC-TGT (e.g. wmt:{directory},pair={'-'.join(languages)})")
        pair = guess[0]
    if pair.count("-") != 1:
        raise ValueError(f"wmt: pair is SRC-TGT (e.g. pair=de-en), got {pair!r}")
    src, tgt = pair.split("-")
    for lang in (src, tgt):
        if lang not in languages:
            raise ValueError(f"{name}: the files hold languages {languages}, not {lang!r}")

    def texts(rows):
        return [(path, i, (row or {}).get(src), (row or {}).get(tgt)) for path, i, row in rows]

    return _seq2seq_dataset(name, model_config, "wmt", texts(train_rows), texts(test_rows), options,
                            (f"{src} source", f"{tgt} target"))


def load_summarization_corpus(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``cnn_dailymail:DIR`` / ``xsum:DIR``: see the module docstring."""
    del seed
    base = str(name).partition(":")[0]
    columns = SUMMARIZATION_COLUMNS[base]
    positional, options = seq2seq._parse(name, None, _SEQ2SEQ_OPTIONS)
    directory = _directory(name, base, positional)
    seq2seq._check_model(model_config, base, ("summarization",))
    files = split_files(directory, TABLE_SUFFIXES)
    train_files, test_files, _ = _train_test(name, base, files, TABLE_SUFFIXES)
    limit = _limit(name, options)
    train_rows, test_rows = (_rows(name, f, columns, limit) for f in (train_files, test_files))
    return _seq2seq_dataset(name, model_config, base, train_rows, test_rows, options, columns)


# -- SQuAD ------------------------------------------------------------------------------------------------

def read_squad(path: str) -> list[dict]:
    """The questions of a SQuAD JSON file: ``{"id", "question", "context", "answers": [(text, start)], "impossible"}``.

    v2.0's unanswerable questions (``is_impossible``) have no answers.  Every answer's text
    must be the context at its ``answer_start``; a file that is not SQuAD JSON is an error.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not readable SQuAD JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path} is not SQuAD JSON: expected {{\"version\": ..., \"data\": [articles]}}")
    out = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                answers = [(a["text"], int(a["answer_start"])) for a in qa.get("answers", [])]
                impossible = bool(qa.get("is_impossible", False))
                for text, start in answers:
                    if context[start:start + len(text)] != text:
                        raise ValueError(f"{path}: question {qa.get('id')!r}: answer {text!r} is not the context at "
                                         f"answer_start={start}")
                if not answers and not impossible:
                    raise ValueError(f"{path}: question {qa.get('id')!r} has no answer and is not is_impossible")
                out.append({"id": qa.get("id"), "question": qa["question"], "context": context,
                            "answers": answers, "impossible": impossible})
    return out


def encode_squad(tokenizer, questions: list[dict], length: int) -> tuple[dict[str, np.ndarray], int]:
    """``({"inputs", "attention_mask", "token_type_ids", "label"}, left_out)`` for BERT question answering.

    ``[CLS] question [SEP] context [SEP]``, the context cut to ``length`` tokens; ``label`` is the
    first answer's (start, end) token positions, ``(0, 0)`` (``[CLS]``) for an unanswerable
    question, as Hugging Face's ``run_qa`` does.  Answerable questions whose first answer lies past
    the cut are left out (counted in ``left_out``).
    """
    enc = tokenizer([q["question"] for q in questions], [q["context"] for q in questions], padding="max_length",
                    truncation="only_second", max_length=length, return_offsets_mapping=True,
                    return_token_type_ids=True)
    keep, labels = [], []
    for i, q in enumerate(questions):
        if not q["answers"]:
            keep.append(i)
            labels.append((0, 0))
            continue
        text, start = q["answers"][0]
        end = start + len(text)
        sequence = enc.sequence_ids(i)
        first = last = None
        for j, (s, e) in enumerate(enc["offset_mapping"][i]):
            if sequence[j] != 1:
                continue
            if first is None and s <= start < e:
                first = j
            if s < end <= e:
                last = j
        if first is None or last is None:
            continue
        keep.append(i)
        labels.append((first, last))
    arrays = {"inputs": np.asarray(enc["input_ids"], np.int32)[keep],
              "attention_mask": np.asarray(enc["attention_mask"], np.int32)[keep],
              "token_type_ids": np.asarray(enc["token_type_ids"], np.int32)[keep],
              "label": np.asarray(labels, np.int32).reshape(-1, 2)}
    return arrays, len(questions) - len(keep)


def load_squad(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``squad:DIR[,version=1.1|2.0][,tokenizer=DIR][,limit=N]``: see the module docstring."""
    del seed
    from zoo.data.text import _check_model, build_wordpiece_tokenizer, check_tokenizer_fits, load_tokenizer

    positional, options = seq2seq._parse(name, None, {"tokenizer": "tokenizer=DIR", "limit": "limit=N",
                                                      "version": "version=1.1|2.0"})
    directory = _directory(name, "squad", positional)
    _check_model(model_config, name, "question_answering")
    files = split_files(directory, (".json",))
    version = options.get("version")
    if version is not None and version not in ("1.1", "2.0"):
        raise ValueError(f"squad: version must be 1.1 or 2.0, got {version!r}")
    versions = {m.group(1) for paths in files.values() for p in paths
                for m in [re.search(r"v(\d\.\d)\.json$", p)] if m}
    if version is None and len(versions) > 1:
        raise ValueError(f"{name}: {directory} holds SQuAD {' and '.join(sorted(versions))}; choose one with "
                         f"version=1.1 or version=2.0")
    if version is not None:
        files = {k: [p for p in v if p.endswith(f"v{version}.json")] for k, v in files.items()}
        files = {k: v for k, v in files.items() if v}
    train_files, test_files, _ = _train_test(name, "squad", files, (".json",))
    limit = _limit(name, options)
    train = [q for p in train_files for q in read_squad(p)][:limit]
    test = [q for p in test_files for q in read_squad(p)][:limit]
    if options.get("tokenizer"):
        tokenizer = load_tokenizer(options["tokenizer"])
    else:
        texts = sorted({q["context"] for q in train}) + [q["question"] for q in train]
        tokenizer = build_wordpiece_tokenizer(texts, model_config.vocab_size)
    check_tokenizer_fits(tokenizer, model_config, name)
    length = model_config.input_shape[0]
    (train_arrays, train_out), (test_arrays, test_out) = (encode_squad(tokenizer, qs, length) for qs in (train, test))
    if not len(train_arrays["label"]) or not len(test_arrays["label"]):
        raise ValueError(f"{name}: no {'training' if not len(train_arrays['label']) else 'test'} question has its "
                         f"answer within the model's {length} tokens (input_shape)")
    if train_out or test_out:
        import sys

        print(f"{name}: left out {train_out} training and {test_out} test questions whose answer lies past the "
              f"model's {length} tokens", file=sys.stderr)
    return ArrayDataset(str(name), train_arrays, test_arrays, None, "tokens")


__all__ = ["CORPORA", "SPLITS", "encode_squad", "load_squad", "load_summarization_corpus", "load_wmt", "read_squad",
           "read_table", "split_files"]
