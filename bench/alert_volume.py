"""How many ordinary articles the shipped model alerts on: the noise an analyst reads.

Run from the repository root:  .venv/bin/python bench/alert_volume.py [--sample N]
Scores every article of the general news corpora in ../shared/data (title plus the
first 1,500 characters), leaving out the dev set's ids and the ids reserved for
independent evaluation, and counts those that pass either label's threshold. Nearly
all of these corpora's articles are ordinary business, politics and sport, so the
rate is mostly false alarms; --sample prints that many alerted headlines, drawn at
random, for reading.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.model import load_model  # noqa: E402
from alertd.model.evaluation import EVALUATED_CHARS, jsonl_records  # noqa: E402
from alertd.text.normalise import model_input  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CORPORA = {
    "en ag_news": "ag_news/ag_news_test.jsonl.gz",
    "en bbc_news": "bbc_news/bbc_news.jsonl.gz",
    "en reuters21578": "reuters21578/reuters21578.jsonl.gz",
    "id news_rss_2025": "id_news_rss_2025",
    "id tempo_feed_items": "id_tempo_feed_items",
    "id detik_titles": "id_detik_titles",
    "ar saudinewsnet": "ar_saudinewsnet",
    "de 10kgnad": "de_10kgnad_test",
    "es fakedes_true": "es_fakedes_true",
    "fr masakhanews": "fr_masakhanews",
    "ja livedoor": "ja_livedoor",
    "ko ynat_headlines": "ko_ynat_headlines",
    "ru lenta_topics_2024": "ru_lenta_topics_2024",
    "zh tnews_headlines": "zh_tnews_headlines",
    "many gnews_trending_2022": "gnews_trending_2022",
    "many wmt_native_news": "wmt_native_news",
}  # general news; corpora gathered around one topic (North Korean state news, Palestine headlines) are left out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=0, help="print this many alerted headlines, at random")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"no shared data at {DATA}; nothing to measure", file=sys.stderr)
        return 1
    excluded = set((DATA / "HOLDOUT_IDS.txt").read_text().split())
    excluded |= {json.loads(line)["id"] for line in (DATA / "labels" / "dev.jsonl").read_text().splitlines() if line.strip()}
    model = load_model(ROOT / "models")
    report, alerted = {}, []
    for name, relative in CORPORA.items():
        path = DATA / relative
        if not path.exists():
            continue
        rows = [r for r in jsonl_records(path) if str(r.get("id")) not in excluded]
        texts = [model_input(str(r.get("title") or ""), str(r.get("text") or "")[:EVALUATED_CHARS]) for r in rows]
        hits = 0
        for start in range(0, len(texts), 500):
            scores = model.probabilities(texts[start : start + 500])
            for i, row in enumerate(rows[start : start + 500]):
                labels = [l for l in scores if scores[l][i] >= model.thresholds[l]]
                if labels:
                    hits += 1
                    alerted.append((name, "+".join(labels), str(row.get("title") or row.get("text"))[:100]))
        report[name] = {"articles": len(rows), "alerted": hits, "per_1000": round(1000 * hits / max(len(rows), 1), 1)}
    print(json.dumps({"model": model.model_id, "corpora": report}, indent=2))
    for name, labels, title in sorted(random.Random(0).sample(alerted, min(args.sample, len(alerted)))):
        print(f"{name:<20} {labels:<24} {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
