"""De-identification of text: a trained PII tagger finds personal data, each entity is replaced by its type.

``zoo deidentify --workdir W input.txt`` (or :func:`deidentify`) reads a run of a
token-classification model trained on ``--data pii`` (e.g. ``zoo train bert_pii
--data pii``), tags each line of the text and writes it back with every entity
replaced by ``[NAME]``, ``[EMAIL]``, ``[PHONE]``, ``[ADDRESS]``, ``[DOB]`` or ``[ID]``;
every other character, line endings included, is kept as it was.

The tokenizer is rebuilt from the run's dataset (``zoo.data.pii`` builds it
deterministically from the training sentences: the same ids as in training).  A
line longer than the model's window is tagged in consecutive windows; an entity
cut by a window boundary is joined again when both halves get its type.  Each
word's tag is the one predicted on its first token (as in training).

:func:`compare_on_pii` scores the tagger against the peers (``zoo.peers.pii``:
regular expressions, Presidio) on the held-out sentences with ``seqeval``'s
entity-level precision, recall and F1, all on the same words.
"""

from __future__ import annotations

import functools

import numpy as np

from zoo.data import pii

PLACEHOLDER = "[{}]"


def replace_entities(text: str, spans) -> str:
    """``text`` with each ``(start, end, type)`` span replaced by ``[TYPE]``; the rest is kept character for character.

    Raises:
      ValueError: a span is out of ``text``'s range, empty, or overlaps another.
    """
    pieces, cursor = [], 0
    for start, end, kind in sorted(spans):
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entity span ({start}, {end}) is not a non-empty range of the {len(text)}-character text")
        if start < cursor:
            raise ValueError(f"entity spans overlap at character {start}: ({start}, {end}, {kind!r})")
        pieces += [text[cursor:start], PLACEHOLDER.format(kind)]
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1 (``seqeval``, CoNLL evaluation: an entity counts when its type and
    every token of its extent match) of BIO tag sequences.

    Returns:
      ``{"precision", "recall", "f1", "support", "per_type": {TYPE: {"precision", "recall", "f1", "support"}}}``;
      the totals are micro averages over all entities.
    """
    from seqeval.metrics import classification_report

    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tags must have the same sentences and the same tokens per sentence")
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    scores = lambda r: {"precision": float(r["precision"]), "recall": float(r["recall"]),  # noqa: E731
                        "f1": float(r["f1-score"]), "support": int(r["support"])}
    return {**scores(report["micro avg"]),
            "per_type": {k: scores(report[k]) for k in pii.ENTITY_TYPES if k in report}}


def span_tags(tokenizer, texts, spans_per_text) -> list[list[str]]:
    """The BIO tags that character spans give the words (``zoo.data.pii.words``) of each text."""
    rows = []
    for enc, spans in zip(tokenizer.encode_batch(list(texts), add_special_tokens=False), spans_per_text):
        rows.append(pii.tags_from_spans(pii.words(enc)[0], spans))
    return rows


class PiiTagger:
    """A token-classification model with the ``pii`` dataset's tokenizer: text -> BIO tags -> entity spans.

    Args:
      model: a model of task ``token_classification`` with ``len(zoo.data.pii.LABELS)`` classes.
      params: its parameters.
      tokenizer: the ``tokenizers.Tokenizer`` it was trained with (``zoo.data.pii.pii_tokenizer``).
      batch_size: windows per forward pass.
    """

    def __init__(self, model, params, tokenizer, batch_size: int = 64):
        import jax

        self.model, self.params, self.tokenizer, self.batch_size = model, params, tokenizer, batch_size
        self.length = model.config.input_shape[0]
        self.cls, self.sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        self._logits = jax.jit(lambda p, x: model.apply({"params": p}, x, train=False))

    @classmethod
    def from_run(cls, workdir: str, *, step: int | None = None, key_file: str | None = None) -> "PiiTagger":
        """The tagger of a run trained on ``--data pii`` (its newest checkpoint, or ``step``; ``key_file``: the key
        of an encrypted run)."""
        from zoo.registry import task_name
        from zoo.train.loop import load_run

        model, state, meta = load_run(workdir, step, key_file=key_file)
        data = str(meta.get("data"))
        if data.split(":", 1)[0] != "pii" or task_name(model.config) != "token_classification":
            raise ValueError(f"{workdir} holds a {task_name(model.config)} run on data {data!r}; deidentify takes a "
                             "token tagger trained on --data pii (e.g. zoo train bert_pii --data pii)")
        num_train, _ = pii.parse_name(data)
        tokenizer = pii.pii_tokenizer(num_train, meta["train_config"]["seed"], model.config.vocab_size)
        return cls(model, state.params, tokenizer)

    def tags(self, texts) -> list[tuple[list[tuple[int, int]], list[str]]]:
        """``(offsets, tags)`` of the words of each text (``zoo.data.pii.words``): character spans and the BIO tags
        predicted on their first tokens."""
        body = self.length - 2
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        windows, owners = [], []
        for n, enc in enumerate(encodings):
            for start in range(0, len(enc.ids), body):
                windows.append(enc.ids[start:start + body])
                owners.append(n)
        ids = np.zeros((max(len(windows), 1), self.length), np.int32)
        for row, w in enumerate(windows):
            ids[row, :len(w) + 2] = [self.cls, *w, self.sep]
        predicted = []
        for first in range(0, len(windows), self.batch_size):
            chunk = ids[first:first + self.batch_size]
            padded = np.zeros((self.batch_size, self.length), np.int32)  # one shape: one compilation
            padded[:len(chunk)] = chunk
            predicted.append(np.asarray(self._logits(self.params, padded)).argmax(-1)[:len(chunk)])
        predicted = np.concatenate(predicted) if predicted else np.zeros((0, self.length), np.int64)
        token_tags: list[list[str]] = [[] for _ in encodings]
        for row, (w, n) in enumerate(zip(windows, owners)):
            token_tags[n] += [pii.LABELS[i] for i in predicted[row, 1:len(w) + 1]]
        out = []
        for enc, tags in zip(encodings, token_tags):
            offsets, first = pii.words(enc)
            word_tags = [tags[i] for i in first]
            for j in range(1, len(first)):  # a window boundary cuts an entity: its next word continues it
                if first[j] % body == 0 and word_tags[j] != "O" and word_tags[j - 1][2:] == word_tags[j][2:]:
                    word_tags[j] = "I-" + word_tags[j][2:]
            out.append((offsets, word_tags))
        return out

    def spans(self, texts) -> list[list[tuple[int, int, str]]]:
        """The entities ``(start, end, type)`` found in each text."""
        return [pii.spans_from_tags(offsets, tags) for offsets, tags in self.tags(texts)]

    def deidentify(self, text: str) -> str:
        """``text`` with each entity found replaced by ``[TYPE]``, line by line (line endings kept)."""
        lines = text.splitlines(keepends=True)
        return "".join(replace_entities(line, spans) for line, spans in zip(lines, self.spans(lines)))


def deidentify(workdir: str, text: str, *, step: int | None = None, key_file: str | None = None) -> str:
    """``text`` de-identified by the tagger of the run in ``workdir`` (see :class:`PiiTagger`)."""
    return PiiTagger.from_run(workdir, step=step, key_file=key_file).deidentify(text)


def deidentify_file(workdir: str, path: str, out: str | None = None, *, step: int | None = None,
                    key_file: str | None = None) -> str:
    """De-identifies UTF-8 file ``path``, writes the result to ``out`` (when given) and returns it."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path} as UTF-8 text: {e}") from None
    result = deidentify(workdir, text, step=step, key_file=key_file)
    if out is not None:
        with open(out, "w", encoding="utf-8", newline="") as f:
            f.write(result)
    return result


@functools.lru_cache(maxsize=1)
def _presidio():
    from zoo.peers.pii import presidio_analyzer

    return presidio_analyzer()


def compare_on_pii(tagger: PiiTagger, sentences, *, presidio: bool = True) -> dict:
    """Entity-level scores of the tagger, the regular expressions and (``presidio=True``) Presidio on ``sentences``
    (``zoo.data.pii.PiiSentence``), all on the same words (``zoo.data.pii.words``).

    Returns:
      ``{method: entity_scores(...)}`` for ``"tagger"``, ``"regex"`` and ``"presidio"``; when Presidio cannot be
      loaded its entry is ``{"unavailable": reason}``.
    """
    from zoo.peers.pii import presidio_spans, regex_spans

    texts = [s.text for s in sentences]
    gold = span_tags(tagger.tokenizer, texts, [s.spans for s in sentences])
    predicted = [tags for _, tags in tagger.tags(texts)]
    report = {"tagger": entity_scores(gold, predicted),
              "regex": entity_scores(gold, span_tags(tagger.tokenizer, texts, [regex_spans(t) for t in texts]))}
    if presidio:
        try:
            analyzer = _presidio()
        except ValueError as e:
            report["presidio"] = {"unavailable": str(e)}
        else:
            found = [presidio_spans(analyzer, t) for t in texts]
            report["presidio"] = entity_scores(gold, span_tags(tagger.tokenizer, texts, found))
    return report


def format_scores(report: dict) -> str:
    """A plain-text table of :func:`compare_on_pii`'s report: one row per method, then F1 per entity type."""
    types = pii.ENTITY_TYPES
    lines = [f"{'method':10s} {'P':>6s} {'R':>6s} {'F1':>6s}  " + " ".join(f"{t:>7s}" for t in types)]
    for method, s in report.items():
        if "unavailable" in s:
            lines.append(f"{method:10s} unavailable: {s['unavailable']}")
            continue
        per = " ".join(f"{s['per_type'].get(t, {}).get('f1', 0.0):7.3f}" for t in types)
        lines.append(f"{method:10s} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f}  {per}")
    return "\n".join(lines)


__all__ = ["PLACEHOLDER", "PiiTagger", "compare_on_pii", "deidentify", "deidentify_file", "entity_scores",
           "format_scores", "replace_entities", "span_tags"]
