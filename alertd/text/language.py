"""Language of an article, from the text when it says enough, else from the feed's hint."""

from __future__ import annotations

import py3langid

_MIN_CHARS = 20
_MIN_CONFIDENCE = 0.5
_IDENTIFIER = py3langid.langid.LanguageIdentifier.from_model_file(py3langid.langid.MODEL_FILE, norm_probs=True)


def detect_language(text: str, hint: str | None = None) -> str | None:
    sample = text[:2000].strip()
    if len(sample) < _MIN_CHARS:
        return hint
    lang, confidence = _IDENTIFIER.classify(sample)
    return lang if confidence >= _MIN_CONFIDENCE or hint is None else hint
