"""Find labels that the rest of the labelled data contradicts.

Each example is scored by a model fitted without it (k folds, by a hash of the id), and
is a suspect when that out-of-fold probability sits far from its label. Most suspects
are hard cases the model gets wrong; some are labelling slips. Either way they are the
few worth a second reading before a retrain, out of thousands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from alertd.model.corpus import CorpusError, Example, deduplicate
from alertd.model.training import fit

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Suspect:
    id: str
    label: str
    given: int
    probability: float  # out-of-fold, uncalibrated
    title: str

    @property
    def disagreement(self) -> float:
        return abs(self.probability - self.given)


def suspects(examples: Sequence[Example], folds: int = 5, margin: float = 0.85, progress: Progress = lambda _: None) -> list[Suspect]:
    """Labels whose out-of-fold probability differs from them by more than ``margin``,
    most contradicted first."""
    if folds < 2:
        raise CorpusError("an audit needs at least 2 folds")
    examples, _ = deduplicate(sorted(examples, key=lambda e: e.id))
    fold_of = {e.id: e.fold(folds) for e in examples}
    found: list[Suspect] = []
    for fold in range(folds):
        held_out = [e for e in examples if fold_of[e.id] == fold]
        if not held_out:
            continue
        progress(f"fold {fold + 1}/{folds}: fitting on {len(examples) - len(held_out)}, scoring {len(held_out)}")
        model = fit([e for e in examples if fold_of[e.id] != fold])
        probabilities = model.probabilities([e.model_text for e in held_out])
        for label, values in probabilities.items():
            for example, p in zip(held_out, values.tolist()):
                suspect = Suspect(example.id, label, example.labels[label], round(p, 3), example.title)
                if suspect.disagreement > margin:
                    found.append(suspect)
    return sorted(found, key=lambda s: (-s.disagreement, s.id, s.label))
