"""Sequence-to-sequence text data, generated offline and deterministically, and its subword tokenizer.

Datasets (``load_dataset(name, model_config)``; the model's task is ``translation`` or
``summarization``, ``zoo.tasks.seq2seq``):

- ``"translate:SRC-TGT"`` (``SRC``, ``TGT`` among ``LANGUAGES``; ``"translate"`` = ``en-de``):
  phrases that real locale libraries render in every language: cardinal numbers and ordinals
  in words (``num2words``), long dates with the weekday, clock times and amounts of money
  (Babel's CLDR data).  Each example is one value rendered in both languages
  (``"Friday, March 5, 2021"`` -> ``"Freitag, 5. März 2021"``).  The split is **by value**: a
  value is held out when a CRC32 of it falls in a fixed 1/20 of the range, so no number,
  date, time or amount of the test split occurs in training, and no test source sentence
  either (those rendered alike from a training value are dropped).
- ``"docstrings"``: summarization of Python's own standard library: for every public
  function of ``DOCSTRING_MODULES`` with a docstring, the input is its signature and the
  docstring's body, the target the docstring's one-line summary (PEP 257).  Split by module
  (every fifth module of the list is held out); the content follows the running Python's
  standard library.

Options after the name, comma-separated: ``long=truncate`` (default) cuts sources longer than
the model's ``input_shape`` (keeping their EOS); ``long=refuse`` makes them an error;
``tokenizer=DIR`` uses the ``tokenizer.json`` in ``DIR`` (a Hugging Face T5 checkpoint's, with
``<pad>``, ``</s>``, ``<unk>`` as ids 0, 1, 2) instead of learning one.

Text is NFKC-normalised (CLDR's narrow no-break spaces become spaces) and tokenised by a BPE
tokenizer learnt here from the **training** side (sources and targets) by
:func:`train_bpe_tokenizer`: deterministic (merges by count, ties alphabetical, so a second
training gives the same ids), with ``<pad>`` = 0, ``</s>`` = 1 (end of sequence, appended to
sources and targets as T5 does) and ``<unk>`` = 2, digits always single tokens (unseen
numbers are spelled from seen digits), at most the model's ``vocab_size`` ids.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import inspect
import re
import unicodedata
import zlib
from typing import Sequence

import numpy as np

from zoo.data.pipeline import ArrayDataset

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, EOS, UNK)  # ids 0, 1, 2: T5's pad / end ids, and the decoder start is the pad id
LANGUAGES = ("en", "de", "fr", "es", "it")
IGNORE_INDEX = -100
HELD_OUT = 20  # one value in HELD_OUT is held out
LONG_POLICIES = ("truncate", "refuse")
MAX_SUMMARY_WORDS = 16  # docstrings: longer one-line summaries are left out
DOCSTRING_MODULES = ("os", "os.path", "shutil", "json", "re", "string", "textwrap", "random", "statistics", "math",
                     "itertools", "functools", "operator", "collections", "heapq", "bisect", "copy", "inspect",
                     "pathlib", "glob", "fnmatch", "tempfile", "zipfile", "tarfile", "gzip", "csv", "base64",
                     "binascii", "hashlib", "hmac", "secrets", "uuid", "urllib.parse", "http.client", "email.utils",
                     "html", "xml.dom.minidom", "calendar", "datetime", "time", "locale", "gettext", "argparse",
                     "logging", "warnings", "traceback", "types", "typing", "dataclasses", "enum", "abc",
                     "contextlib", "threading", "subprocess", "socket", "ssl", "select", "asyncio", "sqlite3",
                     "pickle", "shelve", "struct", "codecs", "unicodedata", "difflib", "pprint", "reprlib",
                     "decimal", "fractions", "numbers", "cmath", "array", "weakref", "gc", "dis", "ast",
                     "tokenize", "keyword", "importlib", "pkgutil", "zlib", "lzma", "bz2", "mimetypes",
                     "platform", "sysconfig", "shlex", "configparser", "queue", "sched", "signal", "mmap",
                     "ipaddress", "wave", "colorsys", "imghdr", "doctest", "unittest", "pydoc", "timeit",
                     "urllib.request", "http.server", "http.cookiejar", "email.message", "email.parser",
                     "xml.etree.ElementTree", "concurrent.futures", "multiprocessing.pool", "io", "optparse",
                     "getopt", "plistlib", "netrc", "ftplib", "smtplib", "poplib", "imaplib", "quopri", "filecmp",
                     "fileinput", "stat", "linecache", "trace", "tracemalloc", "pstats", "cProfile", "bdb", "pdb",
                     "code", "codeop", "zipimport", "runpy", "xmlrpc.client", "wsgiref.util", "selectors",
                     "asyncio.tasks", "asyncio.events", "asyncio.streams", "logging.handlers", "unittest.mock",
                     "email.headerregistry", "email.generator", "json.decoder", "json.encoder", "tomllib",
                     "zoneinfo", "graphlib", "contextvars", "mailbox", "modulefinder", "pyclbr", "symtable",
                     "tabnanny", "compileall", "py_compile", "ensurepip", "venv", "zipapp", "string.templatelib")


def normalize(text: str) -> str:
    """NFKC, whitespace runs collapsed to one space, stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


# -- tokenizer --------------------------------------------------------------------------------------------

def _pre_tokenizer():
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.NFKC()
    pre = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.Punctuation()])
    return normalizer, pre


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int):
    """A deterministic BPE ``tokenizers.Tokenizer`` learnt from ``texts`` with at most ``vocab_size`` ids.

    ``tokenizers``' own trainer breaks ties between equally frequent pairs differently from
    run to run; here the merges are learnt in Python (most frequent pair first, ties by the
    pair's text), and ``tokenizers`` only applies them.  Ids: ``SPECIAL_TOKENS`` (0, 1, 2), every
    character of ``texts`` (sorted), then the merged pieces in merge order.
    """
    from tokenizers import Tokenizer, decoders, models

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    normalizer, pre = _pre_tokenizer()
    words = collections.Counter()
    for text in texts:
        for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)):
            words[piece] += 1
    chars = sorted({c for w in words for c in w})
    if len(SPECIAL_TOKENS) + len(chars) > vocab_size:
        raise ValueError(f"the texts have {len(chars)} distinct characters: a vocabulary of {vocab_size} cannot hold "
                         f"them and {len(SPECIAL_TOKENS)} special tokens")
    vocab = {t: i for i, t in enumerate((*SPECIAL_TOKENS, *chars))}
    items = sorted(words.items())
    splits = [list(w) for w, _ in items]
    freqs = [f for _, f in items]
    pairs = collections.Counter()
    where = collections.defaultdict(set)  # pair -> indices of the words holding it
    for i, parts in enumerate(splits):
        for pair in zip(parts, parts[1:]):
            pairs[pair] += freqs[i]
            where[pair].add(i)
    merges = []
    while len(vocab) < vocab_size and pairs:
        (a, b), count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < 2:
            break
        merged = a + b
        merges.append((a, b))
        vocab.setdefault(merged, len(vocab))
        for i in sorted(where.pop((a, b), ())):
            parts = splits[i]
            for pair in zip(parts, parts[1:]):  # the word's pairs leave the counts, then its new ones join
                pairs[pair] -= freqs[i]
                if pairs[pair] <= 0:
                    del pairs[pair]
            out, j = [], 0
            while j < len(parts):
                if j + 1 < len(parts) and parts[j] == a and parts[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(parts[j])
                    j += 1
            splits[i] = out
            for pair in zip(out, out[1:]):
                pairs[pair] += freqs[i]
                where[pair].add(i)
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token=UNK))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre
    tokenizer.decoder = decoders.Metaspace()
    return tokenizer


def check_vocabulary(tokenizer, vocab_size: int, *, model: str = "the model") -> None:
    """ValueError unless every id of ``tokenizer`` fits a model with ``vocab_size`` rows and T5's special ids."""
    size = tokenizer.get_vocab_size()
    if size > vocab_size:
        raise ValueError(f"the tokenizer has {size} ids but {model} has vocab_size={vocab_size}: they do not match")
    for i, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != i:
            raise ValueError(f"the tokenizer must have {token!r} as id {i} (T5's special ids), got "
                             f"{tokenizer.token_to_id(token)!r}")


def encode_pairs(tokenizer, sources: Sequence[str], targets: Sequence[str], source_length: int,
                 target_length: int, *, long: str = "truncate", start_id: int = 0,
                 long_targets: str = "refuse") -> dict[str, np.ndarray]:
    """Token arrays of the ``seq2seq`` tasks' schema: ``inputs``, ``attention_mask``, ``decoder_input_ids``, ``labels``.

    Sources and targets get ``</s>`` appended.  A source longer than ``source_length`` is cut
    (keeping its ``</s>``) with ``long="truncate"``, an error with ``"refuse"``; a target longer
    than ``target_length`` is an error with ``long_targets="refuse"`` (the default: its end
    would be lost), cut like a source with ``"truncate"`` (the real corpora's long summaries,
    ``zoo.data.corpora``); an empty target is always an error.
    """
    for option, policy in (("long", long), ("long_targets", long_targets)):
        if policy not in LONG_POLICIES:
            raise ValueError(f"{option} must be one of {LONG_POLICIES}, got {policy!r}")
    if len(sources) != len(targets):
        raise ValueError(f"encode_pairs needs as many targets as sources, got {len(targets)} and {len(sources)}")
    eos = SPECIAL_TOKENS.index(EOS)
    n = len(sources)
    inputs = np.zeros((n, source_length), np.int32)
    labels = np.full((n, target_length), IGNORE_INDEX, np.int32)
    # no post-processing: a checkpoint's tokenizer.json may append </s> itself (T5's does)
    src_ids = [e.ids for e in tokenizer.encode_batch(list(sources), add_special_tokens=False)]
    tgt_ids = [e.ids for e in tokenizer.encode_batch(list(targets), add_special_tokens=False)]
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        if not t:
            raise ValueError(f"example {i} has an empty target ({targets[i]!r}): nothing to learn to produce")
        s = s + [eos]
        if len(s) > source_length:
            if long == "refuse":
                raise ValueError(f"example {i}'s source has {len(s)} tokens, more than the model's {source_length} "
                                 f"(input_shape); pass long=truncate to cut it: {sources[i][:60]!r}...")
            s = s[:source_length - 1] + [eos]
        t = t + [eos]
        if len(t) > target_length and long_targets == "truncate":
            t = t[:target_length - 1] + [eos]
        if len(t) > target_length:
            raise ValueError(f"example {i}'s target has {len(t)} tokens, more than target_length={target_length} "
                             f"(raise the model's target_length): {targets[i][:60]!r}")
        inputs[i, :len(s)] = s
        labels[i, :len(t)] = t
    shifted = np.concatenate([np.full((n, 1), start_id, np.int32), labels[:, :-1]], 1)
    return {"inputs": inputs, "attention_mask": (inputs != 0).astype(np.int32),
            "decoder_input_ids": np.where(shifted == IGNORE_INDEX, 0, shifted).astype(np.int32), "labels": labels}


def decode_ids(tokenizer, ids) -> str:
    """Text of ``ids`` up to the first ``</s>`` (special tokens dropped)."""
    ids = [int(i) for i in np.asarray(ids).ravel()]
    eos = SPECIAL_TOKENS.index(EOS)
    if eos in ids:
        ids = ids[:ids.index(eos)]
    return normalize(tokenizer.decode([i for i in ids if i >= len(SPECIAL_TOKENS)]))


@dataclasses.dataclass(frozen=True)
class TextPairs:
    """The text side of a seq2seq dataset: its tokenizer and the texts of each split.

    ``decode(ids)`` turns a row of ids into text (what evaluation by decoding calls);
    ``test_targets`` are the references, one per test example.
    """

    tokenizer: object
    train_sources: tuple[str, ...]
    train_targets: tuple[str, ...]
    test_sources: tuple[str, ...]
    test_targets: tuple[str, ...]

    def decode(self, ids) -> str:
        return decode_ids(self.tokenizer, ids)

    def encode_sources(self, texts: Sequence[str], source_length: int, *, long: str = "truncate") -> dict:
        """``{"inputs", "attention_mask"}`` of new source texts (e.g. ``zoo generate --input``)."""
        dummy = ["."] * len(texts)
        arrays = encode_pairs(self.tokenizer, texts, dummy, source_length, 4, long=long)
        return {k: arrays[k] for k in ("inputs", "attention_mask")}


# -- translation phrases ----------------------------------------------------------------------------------

def _held_out(value) -> bool:
    return zlib.crc32(repr(value).encode()) % HELD_OUT == 0


_CURRENCIES = ("EUR", "USD", "GBP")


def _render(kind: str, value, lang: str) -> str:
    from babel.dates import format_date, format_time
    from babel.numbers import format_currency
    from num2words import num2words

    if kind == "cardinal":
        return num2words(value, lang=lang)
    if kind == "ordinal":
        return num2words(value, to="ordinal", lang=lang)
    if kind == "date":
        return format_date(datetime.date(*value), format="full", locale=lang)
    if kind == "time":
        return format_time(datetime.time(*value), format="short", locale=lang)
    if kind == "money":
        cents, currency = value
        return format_currency(cents / 100, currency, locale=lang)
    raise ValueError(kind)


def translation_values() -> list[tuple[str, object]]:
    """Every ``(kind, value)`` of the translation sets, in a fixed order."""
    rng = np.random.default_rng(20250101)
    values = [("cardinal", n) for n in range(10000)]
    values += [("ordinal", n) for n in range(1, 1000)]
    start = datetime.date(1950, 1, 1).toordinal()
    days = sorted(set(rng.integers(start, start + 100 * 365, 6000).tolist()))
    values += [("date", datetime.date.fromordinal(d).timetuple()[:3]) for d in days]
    values += [("time", (h, m)) for h in range(24) for m in range(60)]
    amounts = sorted(set(zip(rng.integers(1, 1_000_000, 5000).tolist(),
                             rng.integers(0, len(_CURRENCIES), 5000).tolist())))
    values += [("money", (c, _CURRENCIES[k])) for c, k in amounts]
    return values


@functools.lru_cache(maxsize=8)
def translation_pairs(source: str, target: str) -> tuple[list, list]:
    """``(train, test)`` lists of ``(source text, target text)``; the split is by value (see the module doc)."""
    for lang in (source, target):
        if lang not in LANGUAGES:
            raise ValueError(f"translate knows languages {LANGUAGES}, got {lang!r}")
    if source == target:
        raise ValueError(f"translate needs two different languages, got {source}-{target}")
    train, test = [], []
    for kind, value in translation_values():
        pair = (normalize(_render(kind, value, source)), normalize(_render(kind, value, target)))
        (test if _held_out((kind, value)) else train).append(pair)
    seen = {s for s, _ in train}
    test = [p for p in test if p[0] not in seen]
    return train, test


# -- docstring summaries ----------------------------------------------------------------------------------

def _summary_and_body(doc: str) -> tuple[str, str] | None:
    """PEP 257: a summary line, then (after a blank line) the body; ``body`` is "" for a one-line docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    if not lines or (len(lines) > 1 and lines[1].strip()):
        return None
    summary, body = lines[0].strip(), " ".join(lines[2:]).strip()
    if not 3 <= len(summary.split()) <= MAX_SUMMARY_WORDS or not summary.endswith("."):
        return None
    return summary, body


def _code_without_docstring(fn) -> str | None:
    """The function's source with its docstring removed (None when the source is not available)."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.body:
        return None
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(
        getattr(node.body[0], "value", None), ast.Constant) else node.body
    return " ".join(ast.unparse(stmt) for stmt in body) or None


def _public_functions(module):
    """``(qualified name, function)`` of the module's public functions and its public classes' methods, sorted."""
    out = []
    for attr in sorted(vars(module)):
        obj = getattr(module, attr)
        if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            out.append((attr, obj))
        elif inspect.isclass(obj):
            for name in sorted(vars(obj)):
                method = vars(obj)[name]
                method = getattr(method, "__func__", method)  # static / class methods
                if not name.startswith("_") and inspect.isfunction(method):
                    out.append((f"{attr}.{name}", method))
    return out


@functools.lru_cache(maxsize=1)
def docstring_pairs() -> tuple[list, list, list]:
    """``(train, test, test_modules)``: ``(input, summary)`` pairs of the standard library, split by module."""
    import importlib
    import warnings

    train, test, held = [], [], []
    seen = set()
    for i, name in enumerate(DOCSTRING_MODULES):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except ImportError:  # a module this Python lacks (e.g. removed in a later version)
            continue
        split = test if i % 5 == 4 else train
        if split is test:
            held.append(name)
        for qualname, fn in _public_functions(module):
            if id(fn) in seen or not fn.__doc__:
                continue
            seen.add(id(fn))
            parts = _summary_and_body(fn.__doc__)
            if parts is None:
                continue
            try:
                signature = str(inspect.signature(fn))
            except (TypeError, ValueError):
                signature = "(...)"
            summary, body = parts
            if not body:  # a one-line docstring: the code says what the function does
                body = _code_without_docstring(fn)
                if body is None:
                    continue
            split.append((normalize(f"def {qualname}{signature}: {body}"), normalize(summary)))
    return train, test, held


def lead_sentence(text: str) -> str:
    """The first sentence of ``text`` (up to the first ``. `` / ``? `` / ``! ``), the summarization lead baseline."""
    parts = re.split(r"(?<=[.!?])\s", text, maxsplit=1)
    return parts[0].strip()


# -- loaders ----------------------------------------------------------------------------------------------

def _parse(name: str, default: str | None, options_help: dict | None = None) -> tuple[str | None, dict]:
    """``(positional, {option: value})`` of ``"base:POSITIONAL,key=value,..."``; ``options_help`` {key: "key=..."}."""
    options_help = options_help or {"long": "long=truncate|refuse", "tokenizer": "tokenizer=DIR"}
    base, _, args = str(name).partition(":")
    positional, options = default, {}
    for part in filter(None, args.split(",")):
        if "=" in part:
            key, _, value = part.partition("=")
            options[key] = value
        else:
            positional = part
    unknown = set(options) - set(options_help)
    if unknown:
        raise ValueError(f"{base} takes the options {' and '.join(options_help.values())}; got {sorted(unknown)} "
                         f"in {name!r}")
    policy = options.get("long", "truncate")
    if "long" in options_help and policy not in LONG_POLICIES:
        raise ValueError(f"{base}: long must be one of {'|'.join(LONG_POLICIES)}, got {policy!r} in {name!r}")
    return positional, options


def _check_model(config, name: str, tasks: tuple[str, ...]) -> None:
    from zoo.registry import task_name

    task = task_name(config)
    if task not in tasks:
        hint = " (zoo train ... --set task=summarization)" if "summarization" in tasks else ""
        raise ValueError(f"{name} serves task {' or '.join(map(repr, tasks))}; the model's task is {task!r}{hint}")
    for field in ("vocab_size", "target_length"):
        if not hasattr(config, field):
            raise ValueError(f"{name} needs an encoder-decoder model config with {field}")


@functools.lru_cache(maxsize=16)
def _tokenizer(texts: tuple[str, ...], vocab_size: int):
    return train_bpe_tokenizer(texts, vocab_size)


def load_tokenizer(path):
    """A ``tokenizers.Tokenizer`` from a directory holding ``tokenizer.json`` (e.g. a Hugging Face T5 checkpoint's)."""
    import os

    from tokenizers import Tokenizer

    file = os.path.join(os.fspath(path), "tokenizer.json")
    if not os.path.isfile(file):
        raise ValueError(f"no tokenizer.json in {path}")
    tokenizer = Tokenizer.from_file(file)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _dataset(name: str, config, train: list, test: list, long: str, tokenizer_dir: str | None = None,
             long_targets: str = "refuse") -> ArrayDataset:
    texts = tuple(t for pair in train for t in pair)
    tokenizer = _tokenizer(texts, config.vocab_size) if tokenizer_dir is None else load_tokenizer(tokenizer_dir)
    check_vocabulary(tokenizer, config.vocab_size, model=getattr(config, "variant", "the model"))
    lengths = (config.input_shape[0], config.target_length)
    start = config.decoder_start_token_id
    arrays = {split: encode_pairs(tokenizer, [s for s, _ in pairs], [t for _, t in pairs], *lengths, long=long,
                                  start_id=start, long_targets=long_targets) for split, pairs in (("train", train), ("test", test))}
    text = TextPairs(tokenizer, tuple(s for s, _ in train), tuple(t for _, t in train), tuple(s for s, _ in test),
                     tuple(t for _, t in test))
    return ArrayDataset(name, arrays["train"], arrays["test"], None, "tokens", text=text)


def load_translation(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``translate[:SRC-TGT][,long=truncate|refuse]`` (default ``en-de``): see the module docstring."""
    del seed  # the split is fixed
    pair, options = _parse(name, "en-de")
    if pair.count("-") != 1:
        raise ValueError(f"translate takes a language pair SRC-TGT (e.g. translate:en-de), got {pair!r}")
    _check_model(model_config, "translate", ("translation",))
    train, test = translation_pairs(*pair.split("-"))
    return _dataset(str(name), model_config, train, test, options.get("long", "truncate"), options.get("tokenizer"))


def load_docstrings(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``docstrings[:long=truncate|refuse]``: see the module docstring."""
    del seed
    positional, options = _parse(name, None)
    if positional is not None:
        raise ValueError(f"docstrings takes only the option long=truncate|refuse, got {name!r}")
    _check_model(model_config, "docstrings", ("summarization",))
    train, test, _ = docstring_pairs()
    return _dataset(str(name), model_config, train, test, options.get("long", "truncate"), options.get("tokenizer"))


__all__ = ["DOCSTRING_MODULES", "LANGUAGES", "SPECIAL_TOKENS", "TextPairs", "check_vocabulary", "decode_ids",
           "docstring_pairs", "encode_pairs", "lead_sentence", "load_docstrings", "load_tokenizer", "load_translation",
           "normalize",
           "train_bpe_tokenizer", "translation_pairs", "translation_values"]
