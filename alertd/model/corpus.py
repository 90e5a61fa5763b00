"""Labelled JSONL: read, validate, de-duplicate, hash, split.

Line format (see LABELING in the docs): ``{"id", "lang", "title", "text",
"labels": {"sanctions": 0|1, "arms_transfer": 0|1}}``; other keys are ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from alertd.domain import LABELS
from alertd.model.features import word_tokens
from alertd.errors import AlertdError
from alertd.text.normalise import model_input

VALIDATION_SHARE = 5  # one item in five, chosen by a hash of its id, never moves


class CorpusError(AlertdError):
    exit_code = 2


@dataclass(frozen=True)
class Example:
    id: str
    lang: str
    title: str
    text: str
    labels: dict[str, int]

    @property
    def model_text(self) -> str:
        return model_input(self.title, self.text)

    def fold(self, folds: int) -> int:
        """A fold fixed by the id alone, whatever else is in the corpus."""
        return int(hashlib.sha256(self.id.encode()).hexdigest(), 16) % folds

    @property
    def in_validation(self) -> bool:
        return self.fold(VALIDATION_SHARE) == 0


def corpus_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl")) if root.is_dir() else [root]


def read_examples(paths: Iterable[Path]) -> Iterator[Example]:
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                yield _example(line, f"{path}:{number}")


def _example(line: str, where: str) -> Example:
    try:
        raw = json.loads(line)
        labels = {label: int(raw["labels"][label]) for label in LABELS}
        if any(v not in (0, 1) for v in labels.values()):
            raise ValueError("labels must be 0 or 1")
        return Example(str(raw["id"]), str(raw.get("lang") or ""), str(raw.get("title") or ""), str(raw.get("text") or ""), labels)
    except (ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{where}: not a labelled example ({type(exc).__name__}: {exc}); see docs/training.md for the format")


NEAR_DUPLICATE_JACCARD = 0.6


def shingles(text: str, size: int = 4) -> set[str]:
    """Overlapping runs of ``size`` tokens (character bigrams for unspaced scripts)."""
    tokens = word_tokens(text)
    return {" ".join(tokens[i : i + size]) for i in range(max(1, len(tokens) - size + 1))}


def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], int]:
    """Keep the first of items that are identical or near-identical (Jaccard similarity of
    token 4-gram shingles at least NEAR_DUPLICATE_JACCARD); refuse clashing ids. Near
    copies would leak between the training and validation splits and flatter the metrics."""
    seen_ids: set[str] = set()
    kept: list[Example] = []
    kept_shingles: list[set[str]] = []
    index: dict[str, list[int]] = {}
    dropped = 0
    for example in examples:
        if example.id in seen_ids:
            raise CorpusError(f"duplicate id {example.id!r} in training data")
        seen_ids.add(example.id)
        mine = shingles(example.model_text)
        overlaps: dict[int, int] = {}
        for shingle in mine:
            for other in index.get(shingle, ()):
                overlaps[other] = overlaps.get(other, 0) + 1
        if any(shared / len(mine | kept_shingles[o]) >= NEAR_DUPLICATE_JACCARD for o, shared in overlaps.items()):
            dropped += 1
            continue
        for shingle in mine:
            index.setdefault(shingle, []).append(len(kept))
        kept.append(example)
        kept_shingles.append(mine)
    return kept, dropped


def corpus_sha256(examples: Iterable[Example]) -> str:
    """Order-independent hash of exactly what the model was trained on."""
    lines = sorted(
        json.dumps([e.id, e.lang, e.title, e.text, [e.labels[l] for l in LABELS]], ensure_ascii=False) for e in examples
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
