"""Text worth scoring: what the pipeline hands the model, from a feed summary or an article page.

The model's own normalisation (``normalise.model_input``) is shared with training and is
not changed here; this step runs before it and removes what training text never had:
compatibility characters and the boilerplate lines publishers wrap around articles in
many languages (subscription pitches, "read also" links, share prompts).
"""

from __future__ import annotations

import re
import unicodedata

from alertd.text.normalise import strip_boilerplate

# Boilerplate beyond the lines normalise.strip_boilerplate knows (which are mostly Indonesian
# and English): "read also" links and share/follow prompts in the feeds' other languages.
_MORE_BOILERPLATE = re.compile(
    r"""^(
        (lesen\s+sie\s+(auch|mehr)|mehr\s+zum\s+thema|lire\s+aussi|à\s+lire\s+aussi|leer\s+m[aá]s|lea\s+tambi[eé]n|
         leia\s+tamb[eé]m|leggi\s+anche|читайте\s+также|اقرأ\s+أيضا|اقرأ\s+أيضاً|相关阅读|延伸阅读|関連記事|관련\s*기사|
         see\s+also|related\s*:|more\s+on\s+this\s+story|click\s+here\s+to)\b.*
      | .*\b(all\s+rights\s+reserved|cookies?\s+policy|sign\s+in\s+to\s+continue|copyright\s+©?|©\s*\d{4})\b.*
      | (teilen|partager|compartir|condividi|compartilhe|поделиться|شارك|分享|共有|공유)\s*(:|on|sur|en|su|em|в)?.{0,40}
      | (tags?|topics?|themen|sujets|etiquetas)\s*:.{0,200}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_SPACES = re.compile(r"[ \t\u00a0\u200b\u3000]+")


def clean_article_text(text: str) -> str:
    """NFKC, whitespace tidied, boilerplate lines and repeated lines removed; line breaks kept."""
    text = unicodedata.normalize("NFKC", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    kept = [line for line in lines if line and not _MORE_BOILERPLATE.match(line.lower())]
    return strip_boilerplate("\n".join(kept))
