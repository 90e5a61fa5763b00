"""Score articles for each label and say which terms drove the score.

Scoring needs only the fitted numbers (each term's column and inverse document
frequency, each label's weights and calibration), not the library that fitted them:
scikit-learn pulls in SciPy's statistics and optimisation code, about 65 MB that a
daemon scoring a few articles a second never uses (docs/decisions.md 44). Training fits
with scikit-learn and hands its numbers over; a test checks that both compute the same
vectors and scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from alertd.domain import Article, Scores
from alertd.model.features import char_grams, word_ngrams
from alertd.text.normalise import model_input

TOP_TERMS = 8

Vector = tuple[np.ndarray, np.ndarray]  # (columns in ascending order, unit-length TF-IDF values)


@dataclass(frozen=True)
class TermSpace:
    """One TF-IDF space: the columns of its terms and their inverse document frequencies.
    A text's vector counts its known terms, damps each count to 1 + log(count), weighs it
    by the term's IDF and scales the whole to unit length, as the space was fitted."""

    analyzer: Callable[[str], list[str]]
    terms: list[str]  # by column
    idf: np.ndarray  # float32, by column
    columns: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", {term: column for column, term in enumerate(self.terms)})

    def __len__(self) -> int:
        return len(self.terms)

    def vector(self, text: str) -> Vector:
        columns = self.columns
        counts: dict[int, int] = {}
        for term in self.analyzer(text):
            column = columns.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        found = np.fromiter(counts, np.int64, len(counts))
        order = np.argsort(found)
        found = found[order]
        tf = np.fromiter(counts.values(), np.float32, len(counts))[order]
        weights = (np.log(tf) + np.float32(1)) * self.idf[found]
        norm = np.sqrt(np.dot(weights.astype(np.float64), weights.astype(np.float64)))
        return found, (weights / norm).astype(np.float32)


@dataclass(frozen=True)
class LabelWeights:
    """One label's logistic regression over the word columns then the character columns."""

    words: np.ndarray  # float64, one per word column
    chars: np.ndarray  # float64, one per character column
    intercept: float

    def log_odds(self, words: Vector, chars: Vector) -> float:
        return float(np.dot(words[1], self.words[words[0]]) + np.dot(chars[1], self.chars[chars[0]]) + self.intercept)


@dataclass
class RelevanceModel:
    """Word n-grams (readable, and shown as explanations) plus character 4-grams (robust
    across scripts and inflection), one logistic regression per label, whose log-odds are
    recalibrated by Platt scaling ``sigmoid(a·z + b)`` fitted on held-out data, so a
    probability of 0.8 is right about 80 % of the time."""

    words: TermSpace
    chars: TermSpace
    weights: dict[str, LabelWeights]
    thresholds: dict[str, float]
    calibration: dict[str, tuple[float, float]] = field(default_factory=dict)  # label → (a, b); absent = identity
    model_id: str = "unsaved"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def vectors(self, text: str) -> tuple[Vector, Vector]:
        return self.words.vector(text), self.chars.vector(text)

    def decision_values(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Uncalibrated log-odds per label."""
        vectors = [self.vectors(t) for t in texts]
        return {label: np.array([w.log_odds(*v) for v in vectors], dtype=np.float64) for label, w in self.weights.items()}

    def calibrated(self, label: str, log_odds: np.ndarray) -> np.ndarray:
        a, b = self.calibration.get(label, (1.0, 0.0))
        return _logistic(a * np.asarray(log_odds, dtype=np.float64) + b)

    def probabilities(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return {label: self.calibrated(label, z) for label, z in self.decision_values(texts).items()}

    def score(self, articles: Sequence[Article]) -> list[Scores]:
        results = []
        for article in articles:
            words, chars = self.vectors(model_input(article.title, article.text))
            probabilities, labels, terms = {}, {}, {}
            for label, weights in self.weights.items():
                slope, offset = self.calibration.get(label, (1.0, 0.0))
                p = _logistic_scalar(slope * weights.log_odds(words, chars) + offset)
                probabilities[label], labels[label] = p, p >= self.thresholds[label]
                # contributions in calibrated log-odds: the raw weight times the calibration slope
                terms[label] = self._top_terms(words, weights.words, slope)
            results.append(Scores(probabilities=probabilities, labels=labels, terms=terms, model_id=self.model_id))
        return results

    def _top_terms(self, words: Vector, coefficients: np.ndarray, slope: float) -> list[tuple[str, float]]:
        """Word n-grams whose presence raised this label's log-odds the most (value × weight)."""
        columns, values = words
        contributions = values * coefficients[columns] * slope
        order = np.argsort(-contributions, kind="stable")[:TOP_TERMS]
        return [(self.words.terms[columns[i]], float(contributions[i])) for i in order if contributions[i] > 0]


def word_space(terms: list[str], idf: np.ndarray) -> TermSpace:
    return TermSpace(word_ngrams, terms, np.asarray(idf, dtype=np.float32))


def char_space(terms: list[str], idf: np.ndarray) -> TermSpace:
    return TermSpace(char_grams, terms, np.asarray(idf, dtype=np.float32))


def _logistic_scalar(x: float) -> float:
    """``_logistic`` of one number, without NumPy's per-call cost (a poll scores a handful)."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def _logistic(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
