"""Measure a model on labelled data, beside the keyword baseline, overall and per language."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_fscore_support

from alertd.domain import LABELS
from alertd.model.classifier import RelevanceModel
from alertd.model.corpus import CorpusError, Example
from alertd.model.keywords import keyword_labels

RELEVANT = "relevant"
RESAMPLES = 1000  # bootstrap draws for F1 intervals
EVALUATED_CHARS = 1500  # of each real article's text, after its title: what the dev-set protocol scores


@dataclass
class Figures:
    precision: float
    recall: float
    f1: float
    pr_auc: float | None
    support: int
    n: int
    confusion: list[list[int]] = field(default_factory=list)
    f1_interval: tuple[float, float] | None = None  # 95 % bootstrap interval, model figures only


@dataclass
class Evaluation:
    model: dict[str, dict[str, Figures]]  # group ("all", "en", ...) → label → figures
    baseline: dict[str, dict[str, Figures]]
    y_true: dict[str, np.ndarray]
    y_score: dict[str, np.ndarray]
    langs: np.ndarray
    ids: list[str]


def figures(y: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None) -> Figures:
    p, r, f1, _ = precision_recall_fscore_support(y, predicted, average="binary", zero_division=0)
    pr_auc = float(average_precision_score(y, scores)) if scores is not None and y.any() and not y.all() else None
    interval = f1_interval(y, predicted) if scores is not None else None
    return Figures(float(p), float(r), float(f1), pr_auc, int(y.sum()), len(y), confusion_matrix(y, predicted, labels=[0, 1]).tolist(), interval)


def f1_interval(y: np.ndarray, predicted: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of F1: how far the figure could move on another
    draw of articles like these. A dev set's small groups have a handful of positives, and
    one article more or less moves their F1 by a lot; the interval says so."""
    if not y.any():
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=resamples)  # times each article is drawn
    y, predicted = y.astype(bool), predicted.astype(bool)
    tp, fp, fn = (draws @ (y & predicted), draws @ (~y & predicted), draws @ (y & ~predicted))
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    low, high = np.percentile(f1, [2.5, 97.5])
    return round(float(low), 3), round(float(high), 3)


def evaluate(model: RelevanceModel, examples: Sequence[Example], progress: Callable[[str], None] = lambda _: None, batch: int = 200) -> Evaluation:
    probabilities: dict[str, list[float]] = {label: [] for label in LABELS}
    texts = [e.model_text for e in examples]
    for start in range(0, len(texts), batch):
        for label, values in model.probabilities(texts[start : start + batch]).items():
            probabilities[label].extend(values.tolist())
        progress(f"scored {min(start + batch, len(texts))}/{len(texts)}")
    y_true = {label: np.array([e.labels[label] for e in examples]) for label in LABELS}
    y_score = {label: np.array(probabilities[label]) for label in LABELS}
    y_pred = {label: (y_score[label] >= model.thresholds[label]).astype(int) for label in LABELS}
    base = [keyword_labels(e.title, e.text) for e in examples]
    b_pred = {label: np.array([b[label] for b in base]) for label in LABELS}

    y_true[RELEVANT] = np.maximum(y_true["sanctions"], y_true["arms_transfer"])
    y_score[RELEVANT] = np.maximum(
        y_score["sanctions"] / (2 * model.thresholds["sanctions"]), y_score["arms_transfer"] / (2 * model.thresholds["arms_transfer"])
    )  # either label over its own threshold ⇔ this ≥ 0.5: a ranking score for PR-AUC
    y_pred[RELEVANT] = np.maximum(y_pred["sanctions"], y_pred["arms_transfer"])
    b_pred[RELEVANT] = np.maximum(b_pred["sanctions"], b_pred["arms_transfer"])

    langs = np.array([e.lang or "?" for e in examples])
    groups = {"all": np.ones(len(examples), dtype=bool)} | {lang: langs == lang for lang in sorted(set(langs))}
    model_figures: dict[str, dict[str, Figures]] = {}
    baseline_figures: dict[str, dict[str, Figures]] = {}
    for group, mask in groups.items():
        model_figures[group] = {l: figures(y_true[l][mask], y_pred[l][mask], y_score[l][mask]) for l in (*LABELS, RELEVANT)}
        baseline_figures[group] = {l: figures(y_true[l][mask], b_pred[l][mask], None) for l in (*LABELS, RELEVANT)}
    return Evaluation(model_figures, baseline_figures, y_true, y_score, langs, [e.id for e in examples])


def join_labels(labels_path: Path, texts_dir: Path) -> list[Example]:
    """Attach title and text to id-only labels (like the real-news dev set) from the JSONL
    corpora under ``texts_dir``, matched on ``id``; the text is cut to EVALUATED_CHARS.
    Records with neither title nor text are skipped: another labels file under
    ``texts_dir`` (the full set beside a subset of it) carries the ids but no text."""
    wanted: dict[str, dict] = {}
    with labels_path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                wanted[str(record["id"])] = record
    found: dict[str, Example] = {}
    for record in jsonl_records(texts_dir, skip=labels_path):
        key = str(record.get("id"))
        if key in wanted and key not in found and (record.get("title") or record.get("text")):
            label = wanted[key]
            found[key] = Example(
                key, label.get("lang") or record.get("lang") or "", str(record.get("title") or ""),
                str(record.get("text") or "")[:EVALUATED_CHARS], {l: int(label["labels"][l]) for l in LABELS},
            )
    missing = [k for k in wanted if k not in found]
    if missing:
        raise CorpusError(f"{len(missing)} labelled ids have no text under {texts_dir}, e.g. {missing[:3]}")
    return [found[k] for k in wanted]


def jsonl_records(root: Path, skip: Path | None = None) -> Iterator[dict]:
    """Every record of every JSONL(.gz) file under ``root`` (or of ``root`` itself), in path order."""
    paths = sorted(p for p in root.rglob("*.jsonl*") if p.name.endswith((".jsonl", ".jsonl.gz"))) if root.is_dir() else [root]
    for path in paths:
        if skip is not None and path.resolve() == skip.resolve():
            continue
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def format_table(evaluation: Evaluation) -> str:
    lines = [f"{'group':<6} {'label':<14} {'n':>5} {'pos':>4}  {'P':>5} {'R':>5} {'F1':>5} {'F1 95%':>11} {'PR-AUC':>6}   {'kw P':>5} {'kw R':>5} {'kw F1':>5}"]
    for group, per_label in evaluation.model.items():
        for label, m in per_label.items():
            b = evaluation.baseline[group][label]
            auc = f"{m.pr_auc:.3f}" if m.pr_auc is not None else "  -  "
            interval = f"{m.f1_interval[0]:.3f}-{m.f1_interval[1]:.3f}" if m.f1_interval else "-"
            lines.append(
                f"{group:<6} {label:<14} {m.n:>5} {m.support:>4}  {m.precision:.3f} {m.recall:.3f} {m.f1:.3f} {interval:>11} {auc:>6}   "
                f"{b.precision:.3f} {b.recall:.3f} {b.f1:.3f}"
            )
    return "\n".join(lines)


def read_labelled(paths: Iterable[Path]) -> list[Example]:
    from alertd.model.corpus import read_examples

    return list(read_examples(paths))
