"""Near-duplicate stories: signatures, and clustering measured on a labelled corpus."""

from __future__ import annotations

from datetime import timedelta

from alertd.stories import StoryMatcher, evaluate_clustering, signature, similarity
from story_corpus import labelled_stream

MATCHER = StoryMatcher(0.5, timedelta(hours=72))
WIRE = ("North Korea ships artillery shells to Russia, breaching UN arms embargo",
        "Satellite imagery shows North Korean cargo ships loading containers of artillery munitions at Rajin port for the Russian army.")


class TestSignature:
    def test_light_edits_stay_similar(self):
        """A reworded headline with an outlet suffix and a dateline keeps the estimate above the threshold."""
        edited = signature(WIRE[0].replace("ships", "sends") + " - Reuters", "SEOUL (Reuters) - " + WIRE[1])
        assert similarity(signature(*WIRE), edited) >= 0.5

    def test_different_stories_are_far_apart(self):
        """Two stories on the same topic share few shingles."""
        other = signature("Iran sends drones to Russia", "Cargo flights delivered Shahed drones to Russian airbases, officials said.")
        assert similarity(signature(*WIRE), other) < 0.2

    def test_deterministic(self):
        """Signatures do not depend on the process: they are stored and compared across restarts."""
        assert signature(*WIRE) == signature(*WIRE) and len(signature(*WIRE)) == 64


class TestClusteringQuality:
    def test_copies_merged_distinct_stories_kept_apart(self):
        """On 600 topic-similar stories with two edited copies each, at least 95% of copies merge and under 0.2% of articles merge wrongly."""
        report = evaluate_clustering(labelled_stream(600, copies=2), MATCHER)
        assert report.duplicates == 1200
        assert report.merge_rate >= 0.95, report.as_dict()
        assert report.wrongly_merged <= 0.002 * report.articles, report.as_dict()
