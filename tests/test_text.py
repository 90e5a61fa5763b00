"""Text normalisation shared by training and scoring, and language identification."""

from __future__ import annotations

from alertd.text.language import detect_language
from alertd.text.normalise import html_to_text, model_input, normalise
from conftest import shared_path


class TestHtmlToText:
    def test_scripts_and_styles_dropped(self):
        """Hostile or decorative markup leaves only the readable text."""
        assert html_to_text("<style>p{}</style><p>One &amp; <i>two</i></p><script>steal()</script><p>three</p>") == "One & two\nthree"

    def test_plain_text_unescaped(self):
        """Entity-encoded plain text is decoded."""
        assert html_to_text("AT&amp;T &lt;3") == "AT&T <3"


class TestNormalise:
    def test_nfkc_case_and_whitespace(self):
        """Compatibility forms fold, case folds, whitespace collapses."""
        assert normalise("ＵＮ  Security\u00a0Council\n\nＦｕｌｌ") == "un security council full"

    def test_seed_example_boilerplate_removed(self):
        """Subscription pitches and link lists in the seed article are dropped before scoring."""
        text = shared_path("examples", "bisnis-id-dprk-russia-arms.txt").read_text(encoding="utf-8")
        cleaned = normalise(text)
        assert "langganan" not in cleaned and "cek berita" not in cleaned and "scan qr code" not in cleaned
        assert "resolusi dewan keamanan" in cleaned

    def test_mandated_notes_removed_and_other_brackets_kept(self):
        """The notes Russian media must attach to banned organisations, 'foreign agents' and
        Meta's networks are dropped; ordinary parentheses stay."""
        text = (
            "Она написала в Instagram (соцсеть запрещена в РФ; принадлежит корпорации Meta, которая признана "
            "экстремистской), что турнир перенесли. Певец (признан иностранным агентом) дал концерт. "
            "Минфин (США) ввел санкции."
        )
        cleaned = normalise(text)
        assert "запрещена" not in cleaned and "экстремист" not in cleaned and "агентом" not in cleaned
        assert "instagram , что турнир перенесли" in cleaned and "минфин (сша) ввел санкции" in cleaned

    def test_model_input_is_title_plus_head(self):
        """The model reads the title and the first 3,000 characters."""
        text = model_input("Title", "word " * 2000)
        assert text.startswith("title word") and len(text) <= 3000 + len("title") + 1


class TestLanguage:
    def test_detects_english_and_indonesian(self):
        """Both first-class languages are recognised from a sentence."""
        assert detect_language("The Security Council renewed the arms embargo on South Sudan for another year.") == "en"
        assert detect_language("Dewan Keamanan PBB memperpanjang embargo senjata terhadap Sudan Selatan.") == "id"

    def test_short_text_uses_hint(self):
        """Too little text to judge falls back to the feed's language hint."""
        assert detect_language("Sanksi", hint="id") == "id"


class TestRepeatedLines:
    def test_repeated_lines_kept_once(self):
        """A caption printed twice is read once, so it does not crowd out the story."""
        assert normalise("Caption A\nStory starts\nCaption A\nStory ends") == "caption a story starts story ends"
