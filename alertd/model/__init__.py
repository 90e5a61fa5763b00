"""The classifier: verified loading and scoring with explanations, training, evaluation.

Callers use ``load_model(path)`` and ``RelevanceModel.score(articles)``; how the model
works inside (features, estimator) can change behind that interface.
"""

from alertd.model.artifact import load_model
from alertd.model.classifier import RelevanceModel

__all__ = ["load_model", "RelevanceModel"]
