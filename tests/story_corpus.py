"""A labelled near-duplicate corpus built from the training corpus: each story appears as
its original plus copies edited the way outlets edit wire copy. Shared by the clustering
tests and bench/stories.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "models" / "training" / "corpus"
_OUTLETS = ["Reuters", "AP", "AFP", "Yonhap", "Kyodo", "ANTARA", "dpa", "The Korea Herald", "NK News", "Al Jazeera"]
_BOILERPLATE = ["Read also: Sanctions tracker, all the latest", "Subscribe to our newsletter for daily updates",
                "Share this article", "Follow us on Telegram", "Baca juga: Berita terkini lainnya"]
_SYNONYMS = {"says": "said", "said": "says", "ships": "sends", "sends": "ships", "new": "fresh", "sanctions": "penalties",
             "over": "about", "after": "following", "Russia": "Moscow", "North Korea": "Pyongyang", "US": "United States",
             "shows": "reveals", "report": "study", "arms": "weapons", "weapons": "arms", "despite": "in spite of"}


def read_corpus(limit: int | None = None, seed: int = 7) -> list[dict]:
    records = []
    for path in sorted(CORPUS.glob("*/*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(records)
    return records[:limit] if limit else records


def _reword(title: str, rng: random.Random) -> str:
    for old, new in _SYNONYMS.items():
        if old in title and rng.random() < 0.5:
            title = title.replace(old, new, 1)
    return title


def wire_copy(record: dict, rng: random.Random) -> tuple[str, str]:
    """One outlet's version of a story: reworded or suffixed headline, dateline, trimmed lede, boilerplate."""
    title = _reword(record["title"], rng)
    if rng.random() < 0.5:
        title = f"{title} - {rng.choice(_OUTLETS)}"
    sentences = [s for s in record["text"].replace("\n", " ").split(". ") if s]
    keep = max(2, int(len(sentences) * rng.uniform(0.5, 1.0)))
    text = ". ".join(sentences[:keep])
    if rng.random() < 0.5:
        text = f"{rng.choice(['SEOUL', 'MOSCOW', 'JAKARTA', 'WASHINGTON', 'BRUSSELS'])} ({rng.choice(_OUTLETS)}) - {text}"
    if rng.random() < 0.5:
        text += "\n" + rng.choice(_BOILERPLATE)
    return title, text


def labelled_stream(stories: int, copies: int = 2, seed: int = 11) -> list[tuple[str, str, str]]:
    """(true_story, title, text) in a shuffled arrival order: originals and their copies interleaved."""
    rng = random.Random(seed)
    stream = []
    for record in read_corpus(stories):
        stream.append((record["id"], record["title"], record["text"]))
        stream += [(record["id"], *wire_copy(record, rng)) for _ in range(copies)]
    rng.shuffle(stream)
    return stream
