"""The classifier: verified loading, scoring contract, explanations, reproducible training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alertd.domain import Article
from alertd.errors import ModelError
from alertd.model import load_model
from alertd.model.artifact import library_versions, read_manifest
from alertd.model.corpus import read_examples
from alertd.model.training import train
from alertd.text.normalise import model_input
from conftest import ROOT, shared_path

MODELS = ROOT / "models"
CORPUS = MODELS / "training" / "corpus"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alertd", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture
def model_copy(tmp_path) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    manifest = read_manifest(MODELS)
    shutil.copy(MODELS / "manifest.json", target)
    shutil.copy(MODELS / manifest.file, target)
    return target


class TestShippedModel:
    def test_seed_example_is_relevant_for_both_labels(self, shipped_model):
        """The canonical Indonesian article about DPRK arms for Russia scores positive on both labels."""
        text = shared_path("examples", "bisnis-id-dprk-russia-arms.txt").read_text(encoding="utf-8")
        title, _, body = text.strip().partition("\n\n")
        [scores] = shipped_model.score([Article(title, body, "id")])
        assert scores.labels == {"sanctions": True, "arms_transfer": True}, scores.probabilities

    def test_authored_hard_negatives_stay_negative(self, shipped_model):
        """Everyday 'sanksi', sports sanctions and a missile test without a transfer are not alerts."""
        negatives = [
            Article("Polisi tilang ratusan pengendara, sanksi denda menanti", "Operasi Zebra di Jakarta menjaring ratusan pengendara tanpa helm. Pelanggar dikenai sanksi tilang dan denda sesuai undang-undang lalu lintas.", "id"),
            Article("Football club hit with sanctions after fans' pitch invasion", "The league's disciplinary committee fined the club and ordered two matches behind closed doors as sanctions for crowd trouble.", "en"),
        ]
        for scores in shipped_model.score(negatives):
            assert not scores.relevant, scores.probabilities

    def test_explanations_are_words_from_the_article(self, shipped_model):
        """Top terms are readable n-grams present in the text, with positive weights, best first."""
        article = Article(
            "North Korea ships artillery shells to Russia in breach of UN sanctions",
            "Containers of munitions were loaded at Rajin port for delivery to the Russian army, violating Security Council resolutions.",
            "en",
        )
        [scores] = shipped_model.score([article])
        text = model_input(article.title, article.text)
        for label, terms in scores.terms.items():
            assert terms, label
            weights = [w for _, w in terms]
            assert all(w > 0 for w in weights) and weights == sorted(weights, reverse=True)
            for term, _ in terms:
                assert all(part in text for part in term.split()), term

    def test_manifest_records_provenance(self):
        """The manifest names file, checksum, labels, thresholds, data hash, versions and metrics."""
        manifest = read_manifest(MODELS)
        assert len(manifest.sha256) == 64 and len(manifest.training_data_sha256) == 64
        assert manifest.labels == ["sanctions", "arms_transfer"]
        assert set(manifest.thresholds) == set(manifest.labels)
        assert set(manifest.library_versions) >= {"scikit-learn", "numpy", "scipy", "joblib"}
        assert set(manifest.metrics["validation"]) == set(manifest.labels)


class TestVerifiedLoading:
    def test_tampered_file_is_refused(self, model_copy):
        """A changed byte fails the checksum and the file is never unpickled."""
        path = model_copy / read_manifest(model_copy).file
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(ModelError, match="does not match its manifest"):
            load_model(model_copy)

    def test_other_format_is_refused(self, model_copy):
        """A manifest of another artifact format is refused with the fix in the message."""
        manifest = json.loads((model_copy / "manifest.json").read_text())
        manifest["format"] = 2
        (model_copy / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelError, match="format 2"):
            load_model(model_copy)

    def test_weights_that_do_not_fit_the_terms_are_refused(self, model_copy):
        """A checksummed bundle whose weights and terms disagree is a clear error, not a wrong score."""
        import joblib

        from alertd.model.artifact import sha256_file

        manifest = json.loads((model_copy / "manifest.json").read_text())
        path = model_copy / manifest["file"]
        bundle = joblib.load(path)
        bundle["weights"]["sanctions"]["words"] = bundle["weights"]["sanctions"]["words"][:-1]
        joblib.dump(bundle, path)
        manifest["sha256"] = sha256_file(path)
        (model_copy / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelError, match="inconsistent"):
            load_model(model_copy)

    def test_corrupt_manifest_and_missing_file(self, model_copy, tmp_path):
        """Unreadable manifests and missing model files are clear errors."""
        (model_copy / "manifest.json").write_text("{not json")
        with pytest.raises(ModelError, match="cannot read model manifest"):
            load_model(model_copy)
        with pytest.raises(ModelError, match="no model manifest"):
            load_model(tmp_path / "empty")

    def test_cli_reports_tampering_without_traceback(self, model_copy):
        """The CLI prints one clear line and exits 3, never a traceback."""
        path = model_copy / read_manifest(model_copy).file
        path.write_bytes(path.read_bytes()[:-100])
        result = run_cli("score", "--model", str(model_copy), "--title", "x")
        assert result.returncode == 3
        assert "does not match its manifest" in result.stderr and "Traceback" not in result.stderr


class TestScoreCommand:
    def test_batch_contract(self, tmp_path):
        """Each input line yields one output line with the documented keys and types."""
        source = tmp_path / "in.jsonl"
        lines = [
            {"id": "a", "title": "Iran sends drones to Russia", "text": "Shahed drones were shipped across the Caspian Sea.", "lang": "en"},
            {"id": 7, "title": "Harga cabai naik", "text": "Harga cabai di pasar naik menjelang Lebaran."},
        ]
        source.write_text("\n".join(json.dumps(l) for l in lines) + "\n\nnot json\n")
        out = tmp_path / "out.jsonl"
        result = run_cli("score", "--input", str(source), "--output", str(out))
        assert result.returncode == 1 and ":4: skipped" in result.stderr  # the bad line is reported, not fatal
        records = [json.loads(l) for l in out.read_text().splitlines()]
        assert [r["id"] for r in records] == ["a", 7]
        for record in records:
            assert set(record) == {"id", "scores", "labels", "relevant", "terms", "model"}
            assert set(record["scores"]) == set(record["labels"]) == set(record["terms"]) == {"sanctions", "arms_transfer"}
            assert all(0 <= p <= 1 for p in record["scores"].values())
            assert record["relevant"] == any(record["labels"].values())
            assert all(isinstance(t, str) and isinstance(w, float) for pairs in record["terms"].values() for t, w in pairs)
        assert records[0]["model"] == read_manifest(MODELS).model_id

    def test_single_article(self):
        """--title/--text prints one JSON object."""
        result = run_cli("score", "--title", "UN renews arms embargo on South Sudan", "--text", "The Security Council extended the embargo.")
        assert result.returncode == 0
        assert set(json.loads(result.stdout)) == {"id", "scores", "labels", "relevant", "terms", "model"}


class TestTraining:
    def test_same_data_same_artifact(self, tmp_path):
        """Training twice on the same data writes byte-identical models and manifests."""
        examples = list(read_examples(sorted(CORPUS.glob("*/batch-01.jsonl"))))
        first = train(examples, tmp_path / "a", ["batch-01"])
        second = train(list(reversed(examples)), tmp_path / "b", ["batch-01"])
        assert first.sha256 == second.sha256 and first.training_data_sha256 == second.training_data_sha256
        assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
        assert load_model(tmp_path / "a").model_id == first.model_id

    def test_telling_terms_are_regularised_less_than_shared_ones(self):
        """A word found only in one label's positives gets a larger column scale than a
        word found in both classes; the character block is scaled down on top."""
        import scipy.sparse as sp

        from alertd.model.training import CHAR_SCALE, column_scale

        # columns: a word in positives only, a word in both classes, a character gram
        # occurring exactly where that second word does
        features = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 1, 1]], dtype=np.float32))
        y = np.array([1, 1, 0, 0])
        scale = column_scale(features, y, n_words=2)
        assert scale[0] > scale[1] > 0
        assert scale[2] == pytest.approx(CHAR_SCALE * scale[1])

    def test_shipped_model_is_reproducible(self, tmp_path):
        """'alertd train' on the repository's corpus rebuilds exactly the shipped artifact."""
        shipped = read_manifest(MODELS)
        if shipped.library_versions != library_versions():
            pytest.skip(f"installed libraries {library_versions()} differ from the build's {shipped.library_versions}")
        result = subprocess.run(
            [sys.executable, "-m", "alertd", "train", "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600
        )
        assert result.returncode == 0, result.stderr
        rebuilt = read_manifest(tmp_path)
        assert rebuilt.training_data_sha256 == shipped.training_data_sha256
        if rebuilt.sha256 == shipped.sha256:
            return
        # Another CPU type: the C math library picks CPU-specific exp/log code, so liblinear's
        # weights may differ in their last digits and with them the bytes. The model must not.
        assert rebuilt.thresholds == shipped.thresholds
        new, old = load_model(tmp_path), load_model(MODELS)
        assert new.words.terms == old.words.terms and new.chars.terms == old.chars.terms
        for label in old.labels:
            assert np.allclose(new.weights[label].words, old.weights[label].words, atol=1e-3), label
            assert np.allclose(new.weights[label].chars, old.weights[label].chars, atol=1e-3), label
            assert np.allclose(new.calibration[label], old.calibration[label], atol=1e-3), label
            for figure, value in shipped.metrics["validation"][label].items():
                assert rebuilt.metrics["validation"][label][figure] == pytest.approx(value, abs=0.002), (label, figure)


class TestScoringWithoutScikitLearn:
    def test_vectors_and_log_odds_match_scikit_learn(self):
        """The daemon's own TF-IDF vectors and log-odds equal what scikit-learn computes from
        the same fitted numbers, in every language of the corpus, headlines included."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        from alertd.model.features import char_grams, word_ngrams
        from alertd.model.training import _space, column_scale, feature_matrix, label_weights, scaled
        from alertd.model.classifier import char_space, word_space

        examples = list(read_examples(sorted(CORPUS.glob("*/batch-01.jsonl"))))
        texts = [e.model_text for e in examples] + [model_input(e.title, "") for e in examples]
        fitted = {}
        for name, analyzer, make in (("words", word_ngrams, word_space), ("chars", char_grams, char_space)):
            vectorizer = TfidfVectorizer(analyzer=analyzer, min_df=2, sublinear_tf=True, dtype=np.float32).fit(texts[: len(examples)])
            fitted[name] = (vectorizer.transform(texts), _space(vectorizer, make))
        for name, (matrix, space) in fitted.items():
            for row, text in enumerate(texts):
                columns, values = space.vector(text)
                expected = matrix[row]
                assert columns.tolist() == expected.indices.tolist(), (name, row)
                np.testing.assert_allclose(values, expected.data, rtol=1e-6, err_msg=f"{name} {row}")
        combined = feature_matrix(fitted["words"][0], fitted["chars"][0])
        y = np.array([e.labels["sanctions"] for e in examples] * 2)
        words, chars = fitted["words"][1], fitted["chars"][1]
        scale = column_scale(combined, y, len(words))
        assert scale.min() < scale.max()  # the folding below is tested on a scale that does something
        clf = LogisticRegression(C=8.0, solver="liblinear").fit(scaled(combined, scale), y)
        weights = label_weights(clf, scale, len(words))
        ours = [weights.log_odds(words.vector(t), chars.vector(t)) for t in texts]
        np.testing.assert_allclose(ours, clf.decision_function(scaled(combined, scale)), rtol=1e-6, atol=1e-9)

    def test_score_and_batch_probabilities_agree(self, shipped_model):
        """score() (one article at a time, with explanations) gives the probabilities the batch path gives."""
        articles = [
            Article("Iran ships drones to Russia", "Shahed drones were delivered across the Caspian.", "en"),
            Article("Harga cabai naik", "Harga cabai di pasar naik menjelang Lebaran.", "id"),
            Article("", "", None),
        ]
        scored = shipped_model.score(articles)
        batch = shipped_model.probabilities([model_input(a.title, a.text) for a in articles])
        for row, scores in enumerate(scored):
            for label, p in scores.probabilities.items():
                assert p == pytest.approx(float(batch[label][row]), abs=1e-12)
                assert scores.labels[label] == (p >= shipped_model.thresholds[label])

    def test_char_grams_are_scikit_learns_char_wb(self):
        """The character analyzer makes the grams scikit-learn's char_wb makes, short words and scripts included."""
        from sklearn.feature_extraction.text import CountVectorizer

        from alertd.model.features import char_grams

        reference = CountVectorizer(analyzer="char_wb", ngram_range=(4, 4)).build_analyzer()
        for text in ["North Korea ships SHELLS to Russia", "a b  cd\tefg\nİstanbul", "조선 무기 수출 制裁 违反", "Санкции ООН", ""]:
            assert char_grams(text) == reference(text), text

    def test_daemon_never_imports_scikit_learn(self):
        """Loading the model and scoring leave scikit-learn and SciPy unimported."""
        code = (
            "import sys; from alertd.model import load_model; from alertd.domain import Article; import alertd.daemon; "
            "load_model().score([Article('Iran ships drones', 'Drones were delivered.', 'en')]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"


class TestDeduplication:
    def test_near_identical_items_are_dropped(self):
        """An item that differs from an earlier one by a word or two is dropped; a different story is kept."""
        from alertd.model.corpus import Example, deduplicate

        base = "The Security Council extended the arms embargo on South Sudan for another year after a vote on Thursday in New York"
        examples = [
            Example("a", "en", "Embargo extended", base, {"sanctions": 1, "arms_transfer": 0}),
            Example("b", "en", "Embargo extended", base.replace("Thursday", "Friday"), {"sanctions": 1, "arms_transfer": 0}),
            Example("c", "en", "Club fined", "The league fined the club after the derby and closed its stadium for two matches", {"sanctions": 0, "arms_transfer": 0}),
        ]
        kept, dropped = deduplicate(examples)
        assert [e.id for e in kept] == ["a", "c"] and dropped == 1

    def test_clashing_ids_are_refused(self):
        """Two examples with one id are an error, not a silent overwrite."""
        from alertd.model.corpus import CorpusError, Example, deduplicate

        one = Example("x", "en", "A", "text one", {"sanctions": 0, "arms_transfer": 0})
        with pytest.raises(CorpusError, match="duplicate id"):
            deduplicate([one, Example("x", "en", "B", "text two", {"sanctions": 0, "arms_transfer": 0})])


class TestCalibration:
    def test_platt_scaling_recovers_known_mapping(self):
        """Fitting sigmoid(a·z + b) to outcomes drawn from a known mapping recovers it."""
        import numpy as np

        from alertd.model.training import platt_scaling

        rng = np.random.default_rng(0)
        z = rng.normal(0, 2, 20000)
        y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(int)
        a, b = platt_scaling(z, y)
        assert abs(a - 0.5) < 0.05 and abs(b + 1.0) < 0.08

    def test_shipped_probabilities_are_calibrated_log_odds(self, shipped_model):
        """Scores are sigmoid(a·z + b) of the regression's log-odds, with (a, b) from the manifest."""
        import numpy as np
        from scipy.special import expit

        manifest = read_manifest(MODELS)
        text = model_input("Iran ships drones to Russia", "Shahed drones were delivered across the Caspian.")
        words, chars = shipped_model.vectors(text)
        probabilities = shipped_model.probabilities([text])
        for label, (a, b) in manifest.training["calibration"].items():
            weights = shipped_model.weights[label]
            z = sum(float(v) * weights.words[c] for c, v in zip(*words)) + sum(float(v) * weights.chars[c] for c, v in zip(*chars)) + weights.intercept
            np.testing.assert_allclose(probabilities[label], expit(a * z + b), rtol=1e-3)
            assert manifest.metrics["validation"][label]["brier"] < 0.1


def test_languages_beyond_the_dev_set_are_told_apart(shipped_model):
    """Authored check items in six languages the dev set lacks (never trained on): relevant
    ones rank above the hard negatives, and most pass the threshold."""
    from alertd.model.evaluation import RELEVANT, evaluate

    result = evaluate(shipped_model, list(read_examples([MODELS / "evaluation" / "other-languages.jsonl"])))
    assert set(result.model) == {"all", "fa", "it", "pt", "tr", "uk", "vi"}
    assert result.model["all"][RELEVANT].pr_auc >= 0.9
    assert result.model["all"][RELEVANT].f1 >= 0.75
