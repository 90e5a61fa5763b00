"""Tokens that work across scripts: words where words are spaced, character bigrams where they are not."""

from __future__ import annotations

import re

# Han, Hiragana, Katakana, Hangul syllables and Thai are written without spaces
# between words (Korean spaces phrases, not words), so a run of them is one huge
# "word" to \w+; we cut such runs into overlapping character bigrams instead.
_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_UNSPACED}]+|[^\W\d_{_UNSPACED}][\w'-]*[^\W_]|[^\W\d_{_UNSPACED}]", re.UNICODE)
_UNSPACED_RUN = re.compile(rf"^[{_UNSPACED}]+$")


def word_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _UNSPACED_RUN.match(token):
            tokens.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif len(token) > 1:
            tokens.append(token)
    return tokens


def word_ngrams(text: str) -> list[str]:
    """Unigrams and bigrams of ``word_tokens``; the analyzer of the word vectorizer."""
    tokens = word_tokens(text)
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


def char_grams(text: str, n: int = 4) -> list[str]:
    """Character n-grams inside words, in lower case, each word padded with a space either
    side; a padded word of at most ``n`` characters is one gram. This is what scikit-learn's
    ``char_wb`` analyzer makes, which fits the character space; scoring uses this one."""
    grams: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        if len(padded) <= n:
            grams.append(padded)
        else:
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams
