"""Near-duplicate clustering quality on a labelled corpus built from the training corpus:
every story plus N copies edited as outlets edit wire copy (see tests/story_corpus.py).

    .venv/bin/python bench/stories.py [--copies 2] [--threshold 0.4 0.5 0.6]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from alertd.stories import StoryMatcher, evaluate_clustering  # noqa: E402
from story_corpus import labelled_stream  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stories", type=int, default=None, help="default: the whole corpus")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    args = parser.parse_args()
    stream = labelled_stream(args.stories or 10**9, args.copies)
    for threshold in args.threshold:
        started = time.perf_counter()
        report = evaluate_clustering(stream, StoryMatcher(threshold, timedelta(hours=72)))
        print(json.dumps({"threshold": threshold, **report.as_dict(), "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
