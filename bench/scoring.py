"""Scoring speed, model size, load time, peak memory and training time.

Run from the repository root:  .venv/bin/python bench/scoring.py
Articles come from the BBC News corpus in ../shared/data when present (real
1,000-word-ish articles), else from the training corpus repeated to length.
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.domain import Article  # noqa: E402
from alertd.model import load_model  # noqa: E402
from alertd.model.artifact import read_manifest  # noqa: E402
from alertd.model.corpus import corpus_files, read_examples  # noqa: E402

BBC = ROOT.parent / "shared" / "data" / "bbc_news" / "bbc_news.jsonl.gz"


def articles(words: int = 1000, count: int = 1000) -> list[Article]:
    if BBC.exists():
        with gzip.open(BBC, "rt", encoding="utf-8") as f:
            texts = [json.loads(line) for line in f]
        pool = [(t["title"], t["text"]) for t in texts]
    else:
        pool = [(e.title, e.text) for e in read_examples(corpus_files(ROOT / "models" / "training" / "corpus"))]
    out = []
    i = 0
    while len(out) < count:
        title, text = pool[i % len(pool)]
        body = text.split()
        while len(body) < words:
            body += pool[(i + len(body)) % len(pool)][1].split()
        out.append(Article(title, " ".join(body[:words]), "en"))
        i += 1
    return out


def rate(model, batch: list[Article], batch_size: int = 100) -> float:
    start = time.perf_counter()
    for i in range(0, len(batch), batch_size):
        model.score(batch[i : i + batch_size])
    return len(batch) / (time.perf_counter() - start)


def main() -> None:
    manifest = read_manifest(ROOT / "models")
    size_mb = (ROOT / "models" / manifest.file).stat().st_size / 1e6
    start = time.perf_counter()
    model = load_model(ROOT / "models")
    load_s = time.perf_counter() - start
    long_articles = articles(1000, 1000)
    short_articles = [Article(a.title, a.text[:1500], a.lang) for a in long_articles]
    model.score(long_articles[:100])  # warm up
    long_rate = rate(model, long_articles)
    short_rate = rate(model, short_articles)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "alertd", "train", "--out", out], cwd=ROOT, check=True, capture_output=True)
        train_s = time.perf_counter() - start
    print(json.dumps({
        "model": manifest.model_id,
        "artifact_mb": round(size_mb, 2),
        "load_and_verify_s": round(load_s, 3),
        "articles_per_s_1000_words_batch_100": round(long_rate, 1),
        "articles_per_s_title_plus_1500_chars": round(short_rate, 1),
        "peak_rss_mb_scoring_process": round(peak_mb, 1),
        "training_s_full_corpus": round(train_s, 1),
        "articles_source": "bbc_news" if BBC.exists() else "training corpus",
    }, indent=2))


if __name__ == "__main__":
    main()
