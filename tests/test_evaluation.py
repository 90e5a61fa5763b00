"""Evaluation: figures per label and language, the keyword baseline, joining id-only labels."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from alertd.cli import main
from alertd.model.corpus import CorpusError, Example
from alertd.model.evaluation import evaluate, f1_interval, join_labels
from alertd.model.keywords import keyword_labels

EXAMPLES = [
    Example("e1", "en", "Pyongyang ships artillery shells to Russia", "Cargo of munitions delivered in breach of UN sanctions.", {"sanctions": 1, "arms_transfer": 1}),
    Example("e2", "en", "Club sanctioned after fans riot", "The league fined the club.", {"sanctions": 0, "arms_transfer": 0}),
    Example("i1", "id", "Korut kirim rudal ke Rusia", "Pengiriman senjata melanggar resolusi DK PBB.", {"sanctions": 1, "arms_transfer": 1}),
    Example("i2", "id", "Harga beras naik", "Harga beras di pasar naik menjelang Lebaran.", {"sanctions": 0, "arms_transfer": 0}),
]


class TestKeywordBaseline:
    def test_boolean_query(self):
        """sanctions needs a sanctions term; arms_transfer needs a weapons term and a transfer term."""
        assert keyword_labels("EU extends sanctions", "") == {"sanctions": 1, "arms_transfer": 0}
        assert keyword_labels("Missile test over the sea", "") == {"sanctions": 0, "arms_transfer": 0}
        assert keyword_labels("Iran ships drones to Russia", "") == {"sanctions": 0, "arms_transfer": 1}
        assert keyword_labels("Korut kirim rudal", "") == {"sanctions": 0, "arms_transfer": 1}


class TestEvaluate:
    def test_groups_and_baseline(self, shipped_model):
        """Figures come for all, each language, each label and 'relevant', for model and baseline."""
        result = evaluate(shipped_model, EXAMPLES)
        assert set(result.model) == {"all", "en", "id"} == set(result.baseline)
        assert set(result.model["all"]) == {"sanctions", "arms_transfer", "relevant"}
        assert result.model["all"]["relevant"].support == 2 and result.model["en"]["sanctions"].n == 2
        # the query fires on e1 ("sanctions") and on the sports story ("sanctioned"), misses i1
        assert result.baseline["all"]["sanctions"].confusion == [[1, 1], [1, 1]]
        np.testing.assert_array_equal(result.y_true["relevant"], [1, 0, 1, 0])

    def test_cli_prints_table(self, tmp_path, capsys):
        """'alertd evaluate' prints a row per group and label with the baseline beside it."""
        data = tmp_path / "labelled.jsonl"
        data.write_text("\n".join(json.dumps({**e.__dict__}) for e in EXAMPLES))
        assert main(["evaluate", "--data", str(data)]) == 0
        out = capsys.readouterr().out
        assert "kw F1" in out and any(l.startswith("id     relevant") for l in out.splitlines())


class TestF1Interval:
    def test_perfect_predictions_leave_no_doubt(self):
        y = np.array([1, 0, 1, 0, 0, 1])
        assert f1_interval(y, y) == (1.0, 1.0)

    def test_interval_holds_the_figure_and_narrows_with_more_articles(self):
        """The same error rate over ten times the articles gives a narrower interval that
        still contains the F1 of the whole set; the draws are seeded, so runs agree."""
        y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
        predicted = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])  # F1 0.75
        small = f1_interval(y, predicted)
        large = f1_interval(np.tile(y, 10), np.tile(predicted, 10))
        assert small[0] < 0.75 < small[1] and large[0] < 0.75 < large[1]
        assert large[1] - large[0] < (small[1] - small[0]) / 2
        assert f1_interval(y, predicted) == small

    def test_no_positives_no_interval(self):
        assert f1_interval(np.zeros(5, int), np.zeros(5, int)) is None

    def test_cli_prints_intervals(self, tmp_path, capsys):
        data = tmp_path / "labelled.jsonl"
        data.write_text("\n".join(json.dumps({**e.__dict__}) for e in EXAMPLES))
        assert main(["evaluate", "--data", str(data), "--json"]) == 0
        figures = json.loads(capsys.readouterr().out)["figures"]
        low, high = figures["all"]["relevant"]["f1_interval"]
        assert 0 <= low <= figures["all"]["relevant"]["f1"] <= high <= 1


class TestJoinLabels:
    def test_joins_on_id_across_gzip_corpora(self, tmp_path):
        """Id-only labels get title and text from any JSONL(.gz) under the texts directory."""
        (tmp_path / "a.jsonl").write_text(json.dumps({"id": "x1", "lang": "en", "title": "T1", "text": "A" * 3000}) + "\n")
        with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
            f.write(json.dumps({"id": "x2", "lang": "id", "title": "T2", "text": "B"}) + "\n")
        labels = tmp_path / "labels.jsonl"
        labels.write_text("\n".join(json.dumps({"id": i, "lang": l, "labels": {"sanctions": 1, "arms_transfer": 0}}) for i, l in (("x2", "id"), ("x1", "en"))))
        joined = join_labels(labels, tmp_path)
        assert [e.id for e in joined] == ["x2", "x1"] and joined[1].title == "T1" and len(joined[1].text) == 1500

    def test_another_labels_file_under_the_texts_is_not_a_text_source(self, tmp_path):
        """A subset of the labels, joined against a directory that also holds the full labels
        file, gets its texts from the corpora, wherever that file sorts among them."""
        labelled = [{"id": i, "lang": "en", "labels": {"sanctions": 1, "arms_transfer": 0}} for i in ("x1", "x2")]
        (tmp_path / "a-labels.jsonl").write_text("\n".join(json.dumps(r) for r in labelled))
        (tmp_path / "b.jsonl").write_text("\n".join(json.dumps({"id": i, "title": f"T-{i}", "text": "body"}) for i in ("x1", "x2")))
        subset = tmp_path / "subset" / "high.jsonl"
        subset.parent.mkdir()
        subset.write_text(json.dumps(labelled[1]))
        joined = join_labels(subset, tmp_path)
        assert [(e.id, e.title, e.text) for e in joined] == [("x2", "T-x2", "body")]

    def test_missing_text_is_an_error(self, tmp_path):
        """A labelled id with no text is reported, not silently dropped."""
        labels = tmp_path / "labels.jsonl"
        labels.write_text(json.dumps({"id": "nope", "labels": {"sanctions": 0, "arms_transfer": 0}}))
        with pytest.raises(CorpusError, match="no text"):
            join_labels(labels, tmp_path)


class TestReport:
    def test_report_has_table_and_images(self, tmp_path, capsys):
        """--report writes an HTML page with the figures table and one PNG per label."""
        data = tmp_path / "labelled.jsonl"
        data.write_text("\n".join(json.dumps({**e.__dict__}) for e in EXAMPLES))
        assert main(["evaluate", "--data", str(data), "--report", str(tmp_path / "report")]) == 0
        page = (tmp_path / "report" / "index.html").read_text()
        assert "keyword F1" in page and page.count("<tr>") == 1 + 3 * 3  # header + (all, en, id) × 3 labels
        for label in ("sanctions", "arms_transfer", "relevant"):
            assert (tmp_path / "report" / f"{label}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'src="{label}.png"' in page
