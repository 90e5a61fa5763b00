"""Label audit: out-of-fold scores point at labels the rest of the data contradicts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from alertd.cli import main
from alertd.model.audit import suspects
from alertd.model.corpus import read_examples
from conftest import ROOT

CORPUS = ROOT / "models" / "training" / "corpus"
FILES = [CORPUS / lang / "batch-01.jsonl" for lang in ("en", "id", "fr")]


@pytest.fixture(scope="module")
def examples():
    return list(read_examples(FILES))


@pytest.fixture(scope="module")
def all_scores(examples):
    """Every label with its out-of-fold probability (a margin below zero lists them all)."""
    return {(s.id, s.label): s for s in suspects(examples, folds=3, margin=-1)}


def test_a_flipped_label_is_listed(examples, all_scores):
    """An example's out-of-fold score does not depend on its own label, so flipping a label
    the other examples confidently agree with makes it a suspect."""
    clear = max((s for s in all_scores.values() if s.label == "sanctions" and s.given == 1), key=lambda s: s.probability)
    assert clear.probability > 0.85 and clear.disagreement < 0.15
    flipped = [dataclasses.replace(e, labels={**e.labels, "sanctions": 0}) if e.id == clear.id else e for e in examples]
    found = suspects(flipped, folds=3, margin=0.7)
    listed = [s for s in found if (s.id, s.label) == (clear.id, "sanctions")]
    assert listed and listed[0].given == 0 and listed[0].probability > 0.7
    assert found == sorted(found, key=lambda s: -s.disagreement)


def test_agreeing_labels_are_not_listed(examples, all_scores):
    found = suspects(examples, folds=3, margin=0.7)
    assert all(s.disagreement > 0.7 for s in found)
    assert len(found) == sum(1 for s in all_scores.values() if s.disagreement > 0.7) < len(all_scores) / 10


def test_cli_lists_suspects(tmp_path, capsys, examples):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = [json.dumps(dataclasses.asdict(e)) for e in examples]
    (corpus / "a.jsonl").write_text("\n".join(lines))
    assert main(["audit-labels", "--corpus", str(corpus), "--folds", "3", "--margin", "-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["id", "label", "given", "p"]
    assert len(out) == 1 + 2 * len(examples)


def test_one_fold_is_refused(tmp_path, capsys):
    assert main(["audit-labels", "--corpus", str(CORPUS / "en"), "--folds", "1"]) == 2
    assert "at least 2 folds" in capsys.readouterr().err
