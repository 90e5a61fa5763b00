"""The shipped model on the real-news dev set, when the shared data sits beside the repository:
the targets the model card reports as met, so a retrain that loses one fails here."""

from __future__ import annotations

import pytest

from alertd.model.evaluation import RELEVANT, evaluate, join_labels
from conftest import shared_path


@pytest.fixture(scope="module")
def dev_evaluation(shipped_model):
    labels = shared_path("data", "labels", "dev.jsonl")
    return evaluate(shipped_model, join_labels(labels, labels.parent.parent))


@pytest.mark.parametrize("group", ["all", "en", "id"])
def test_relevance_f1_overall_and_in_english_and_indonesian(dev_evaluation, group):
    assert dev_evaluation.model[group][RELEVANT].f1 >= 0.85


@pytest.mark.parametrize("label", ["sanctions", "arms_transfer"])
def test_each_label_beats_the_keyword_query_and_ranks_well(dev_evaluation, label):
    figures, keyword = dev_evaluation.model["all"][label], dev_evaluation.baseline["all"][label]
    assert figures.f1 >= keyword.f1 + 0.10
    assert figures.pr_auc >= 0.85
