"""Score articles for each label and say which terms drove the score."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import sklearn
from scipy.special import expit

from alertd.domain import Article, Scores
from alertd.text.normalise import model_input

TOP_TERMS = 8


@dataclass
class RelevanceModel:
    """A fitted model: two vectorizers (word n-grams for reading, character n-grams for
    robustness across scripts and inflection) feeding one logistic regression per label,
    whose log-odds are recalibrated by Platt scaling ``sigmoid(a·z + b)`` fitted on
    held-out data, so a probability of 0.8 is right about 80 % of the time."""

    word_vectorizer: Any
    char_vectorizer: Any
    classifiers: dict[str, Any]
    thresholds: dict[str, float]
    calibration: dict[str, tuple[float, float]] = field(default_factory=dict)  # label → (a, b); absent = identity
    model_id: str = "unsaved"

    @cached_property
    def _vocabulary(self) -> np.ndarray:
        return self.word_vectorizer.get_feature_names_out()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.classifiers)

    def features(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        # the fitted vectorizers and their TF-IDF output need no re-checking on every call;
        # for a poll's few articles the checks cost a tenth of the work
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            words = self.word_vectorizer.transform(texts)
            chars = self.char_vectorizer.transform(texts)
        return words, sp.hstack([words, chars], format="csr")

    def decision_values(self, combined: sp.csr_matrix) -> dict[str, np.ndarray]:
        """Uncalibrated log-odds per label: what ``decision_function`` computes, without its
        input validation, which costs more than the product itself for a poll's few items."""
        return {label: combined @ clf.coef_[0] + clf.intercept_[0] for label, clf in self.classifiers.items()}

    def calibrated(self, label: str, log_odds: np.ndarray) -> np.ndarray:
        a, b = self.calibration.get(label, (1.0, 0.0))
        return expit(a * log_odds + b)

    def probabilities(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        _, combined = self.features(texts)
        return {label: self.calibrated(label, z) for label, z in self.decision_values(combined).items()}

    def score(self, articles: Sequence[Article]) -> list[Scores]:
        if not articles:
            return []
        texts = [model_input(a.title, a.text) for a in articles]
        words, combined = self.features(texts)
        vocabulary = self._vocabulary
        n_words = words.shape[1]
        probs = {label: self.calibrated(label, z) for label, z in self.decision_values(combined).items()}
        # contributions in calibrated log-odds: the raw weight times the calibration slope
        word_coefficients = {
            label: clf.coef_[0][:n_words] * self.calibration.get(label, (1.0, 0.0))[0] for label, clf in self.classifiers.items()
        }
        results = []
        for row in range(len(articles)):
            span = slice(words.indptr[row], words.indptr[row + 1])
            indices, values = words.indices[span], words.data[span]
            terms = {label: _top_terms(indices, values, coefficients, vocabulary) for label, coefficients in word_coefficients.items()}
            results.append(
                Scores(
                    probabilities={label: float(probs[label][row]) for label in self.labels},
                    labels={label: bool(probs[label][row] >= self.thresholds[label]) for label in self.labels},
                    terms=terms,
                    model_id=self.model_id,
                )
            )
        return results


def _top_terms(indices: np.ndarray, values: np.ndarray, coefficients: np.ndarray, vocabulary: np.ndarray) -> list[tuple[str, float]]:
    """Word n-grams whose presence raised this label's log-odds the most (value × weight)."""
    contributions = values * coefficients[indices]
    order = np.argsort(-contributions)[:TOP_TERMS]
    return [(str(vocabulary[indices[i]]), float(contributions[i])) for i in order if contributions[i] > 0]
