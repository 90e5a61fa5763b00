"""One story, one alert: near-duplicate detection with MinHash over character shingles. Pure.

The same wire story reaches many feeds lightly edited: another headline, a trimmed or
re-ordered lede, an outlet's boilerplate. Each article gets a MinHash signature of the
5-character shingles of its normalised title and lede; the fraction of equal signature
values estimates the Jaccard similarity of the shingle sets. Candidates are found through
locality-sensitive hashing (16 bands of 2 values, stored in the database), then confirmed
against the full 64-value signature and the configured threshold.

Translations share no shingles, so shingles alone never merge them; the store also joins
an article to the story of an earlier one with the same canonical link (aggregators,
re-headlined or translated syndication). Translations at different links stay apart:
that would need cross-lingual embeddings, a different tool with different failure modes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

import numpy as np

NUM_PERM = 64
BANDS = 16
ROWS_PER_BAND = 2  # the first BANDS*ROWS_PER_BAND values feed the index; all 64 confirm a match
SHINGLE_CHARS = 5
LEDE_CHARS = 600
_rng = np.random.default_rng(20260101)  # fixed: signatures must be comparable across restarts
# Multiply-shift hashing: h(x) = ((a·x + b) mod 2^64) >> 32 with odd random 64-bit a, a universal
# family; uint64 arithmetic wraps mod 2^64 by itself.
_A = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64)
_POLY = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it is a bijection mod 2^64
_WORDS = re.compile(r"[^\w]+", re.UNICODE)

Signature = tuple[int, ...]


def shingle_text(title: str, text: str) -> str:
    """Title and lede, NFKC, lower case, punctuation and spacing folded."""
    joined = f"{title} {text[:LEDE_CHARS]}"
    return " ".join(_WORDS.sub(" ", unicodedata.normalize("NFKC", joined).lower()).split())


def shingle_hashes(title: str, text: str) -> np.ndarray:
    """A 64-bit hash of each shingle, for all positions at once (a repeated shingle repeats
    its hash, which leaves the minima unchanged): a polynomial in an odd 64-bit constant
    over the shingle's code points, then the SplitMix64 finaliser so that shingles one
    character apart get unrelated hashes. Python-level hashing of each shingle cost more
    than the rest of the signature."""
    folded = shingle_text(title, text)
    if not folded:
        return np.empty(0, np.uint64)
    points = np.frombuffer(folded.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    width = min(SHINGLE_CHARS, len(points))
    with np.errstate(over="ignore"):
        hashes = np.zeros(len(points) - width + 1, np.uint64)
        for k in range(width):
            hashes = hashes * _POLY + points[k : k + len(hashes)]
        hashes ^= hashes >> np.uint64(30)
        hashes *= np.uint64(0xBF58476D1CE4E5B9)
        hashes ^= hashes >> np.uint64(27)
        hashes *= np.uint64(0x94D049BB133111EB)
        hashes ^= hashes >> np.uint64(31)
    return hashes


def signature(title: str, text: str) -> Signature:
    """64 MinHash values (32-bit) of the article's shingles."""
    hashes = shingle_hashes(title, text)
    if not len(hashes):
        return tuple([0xFFFFFFFF] * NUM_PERM)
    with np.errstate(over="ignore"):
        permuted = (hashes[:, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)
    return tuple(permuted.min(axis=0).tolist())


def bands(sig: Signature) -> list[str]:
    """LSH keys: two articles sharing any band become candidates of each other. A key is
    the band's number and its values in hex; they are already hashes."""
    return [f"{band}:" + "".join(f"{v:08x}" for v in sig[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]) for band in range(BANDS)]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity: the fraction of equal MinHash values."""
    return sum(x == y for x, y in zip(a, b)) / NUM_PERM


@dataclass(frozen=True)
class StoryMatcher:
    threshold: float
    window: timedelta

    def window_start(self, now: datetime) -> datetime:
        return now - self.window

    def choose(self, sig: Signature, candidates: Iterable[tuple[int, Sequence[int]]]) -> int | None:
        """The most similar candidate story at or above the threshold, else None (a new story)."""
        best, best_score = None, self.threshold
        for story_id, other in candidates:
            score = similarity(sig, other)
            if score >= best_score:
                best, best_score = story_id, score
        return best


@dataclass(frozen=True)
class ClusteringReport:
    articles: int
    true_stories: int
    duplicates: int  # articles whose story had already appeared
    merged: int  # duplicates that joined the right story
    missed: int  # duplicates left as a story of their own
    wrongly_merged: int  # articles that joined a different story

    @property
    def merge_rate(self) -> float:
        return self.merged / self.duplicates if self.duplicates else 1.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "merge_rate": round(self.merge_rate, 4)}


def cluster(articles: Sequence[tuple[str, str]], matcher: StoryMatcher) -> list[int]:
    """Assign each (title, text), in order, to a story index, as the store does, without the time window."""
    index: dict[str, set[int]] = {}
    sigs: list[Signature] = []
    assigned: list[int] = []
    for title, text in articles:
        sig = signature(title, text)
        keys = bands(sig)
        candidate_ids = set().union(*(index.get(k, set()) for k in keys))
        story = matcher.choose(sig, ((c, sigs[c]) for c in sorted(candidate_ids)))
        if story is None:
            story = len(sigs)
            sigs.append(sig)
            for k in keys:
                index.setdefault(k, set()).add(story)
        assigned.append(story)
    return assigned


def evaluate_clustering(articles: Sequence[tuple[str, str, str]], matcher: StoryMatcher) -> ClusteringReport:
    """Score clustering of (true_story, title, text) records taken in order."""
    assigned = cluster([(t, x) for _, t, x in articles], matcher)
    owner: dict[int, str] = {}  # story index -> true story of its first article
    seen: set[str] = set()
    duplicates = merged = missed = wrong = 0
    for (truth, _, _), story in zip(articles, assigned):
        is_duplicate = truth in seen
        seen.add(truth)
        duplicates += is_duplicate
        if story not in owner:
            owner[story] = truth
            missed += is_duplicate
        elif owner[story] == truth:
            merged += 1
        else:
            wrong += 1
    return ClusteringReport(len(articles), len(seen), duplicates, merged, missed, wrong)
