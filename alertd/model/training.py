"""Fit the model on labelled examples, choose per-label thresholds on held-out data, save."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from alertd.domain import LABELS
from alertd.model.artifact import Manifest, save_model
from alertd.model.classifier import RelevanceModel
from alertd.model.corpus import CorpusError, Example, corpus_sha256, deduplicate
from alertd.model.features import word_ngrams

Progress = Callable[[str], None]


def fit(examples: Sequence[Example], progress: Progress = lambda _: None) -> RelevanceModel:
    texts = [e.model_text for e in examples]
    progress(f"vectorising {len(texts)} examples")
    word_vectorizer = TfidfVectorizer(analyzer=word_ngrams, min_df=2, sublinear_tf=True, max_features=150_000, dtype=np.float32)
    char_vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(4, 4), min_df=2, sublinear_tf=True, max_features=150_000, dtype=np.float32
    )
    words = word_vectorizer.fit_transform(texts)
    chars = char_vectorizer.fit_transform(texts)
    combined = sp.hstack([words, chars], format="csr")
    classifiers = {}
    for label in LABELS:
        y = np.array([e.labels[label] for e in examples])
        if y.min() == y.max():
            raise CorpusError(f"training data has no {'positive' if y.max() == 0 else 'negative'} examples for {label}")
        progress(f"fitting {label}")
        clf = LogisticRegression(C=8.0, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=0)
        clf.fit(combined, y)
        classifiers[label] = clf
    return RelevanceModel(word_vectorizer, char_vectorizer, classifiers, thresholds={l: 0.5 for l in LABELS})


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold with the best F1 on held-out data; ties go to the higher (more precise) one."""
    best, best_f1 = 0.5, -1.0
    for t in np.arange(0.05, 0.951, 0.01):
        predicted = p >= t
        tp = int((predicted & (y == 1)).sum())
        f1 = 2 * tp / max(1, int(predicted.sum()) + int(y.sum()))
        if f1 >= best_f1:
            best, best_f1 = float(t), f1
    return round(best, 2)


def label_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    precision, recall, f1, _ = precision_recall_fscore_support(y, p >= threshold, average="binary", zero_division=0)
    return {
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "f1": round(float(f1), 4),
        "pr_auc": round(float(average_precision_score(y, p)), 4) if y.any() else 0.0,
        "support": int(y.sum()),
    }


def train(examples: Sequence[Example], out_dir: Path, sources: list[str], progress: Progress = lambda _: None) -> Manifest:
    # sorted first, so the artifact depends on what the data is, not on file order
    examples, dropped = deduplicate(sorted(examples, key=lambda e: e.id))
    train_set = [e for e in examples if not e.in_validation]
    validation = [e for e in examples if e.in_validation]
    progress(f"{len(examples)} examples after removing {dropped} duplicates: {len(train_set)} train, {len(validation)} validation")
    model = fit(train_set, progress)
    probabilities = model.probabilities([e.model_text for e in validation])
    metrics: dict[str, dict[str, float]] = {}
    for label in LABELS:
        y = np.array([e.labels[label] for e in validation])
        model.thresholds[label] = best_f1_threshold(y, probabilities[label])
        metrics[label] = label_metrics(y, probabilities[label], model.thresholds[label])
    progress("writing artifact")
    return save_model(
        model,
        out_dir,
        {
            "training_data_sha256": corpus_sha256(examples),
            "metrics": {"validation": metrics},
            "training": {
                "sources": sources,
                "examples": len(examples),
                "train": len(train_set),
                "validation": len(validation),
                "duplicates_dropped": dropped,
                "languages": _count_by_lang(examples),
                "threshold_rule": "best F1 on the fixed validation split",
            },
        },
    )


def _count_by_lang(examples: Sequence[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.lang] = counts.get(e.lang, 0) + 1
    return dict(sorted(counts.items()))
