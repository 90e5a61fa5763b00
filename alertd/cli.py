"""Command line: parse arguments, build objects, call the core, map AlertdError to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

import structlog

from alertd import __version__
from alertd.config import Settings, load_settings
from alertd.errors import AlertdError, ConfigError

DEFAULT_CORPUS = Path("models/training/corpus")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except ConfigError as exc:
        print(f"alertd: invalid configuration ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return exc.exit_code
    except AlertdError as exc:
        print(f"alertd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="Sanctions and arms-transfer news alerts.")
    parser.add_argument("--version", action="version", version=f"alertd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config", "-c", default=os.environ.get("ALERTD_CONFIG", "config/alertd.toml"),
            help="TOML configuration file (default: $ALERTD_CONFIG or config/alertd.toml)",
        )
        return p

    with_config(sub.add_parser("run", help="run the daemon until SIGTERM/SIGINT")).set_defaults(handler=cmd_run)
    poll_once = with_config(sub.add_parser("poll-once", help="poll every feed once, deliver what is due, exit"))
    poll_once.add_argument("--due-only", action="store_true", help="poll only feeds whose next poll time has come (for cron)")
    poll_once.set_defaults(handler=cmd_poll_once)
    with_config(sub.add_parser("check-config", help="validate the configuration; exit 2 when invalid")).set_defaults(handler=cmd_check_config)

    score = sub.add_parser("score", help="score one article or a JSONL batch")
    score.add_argument("--title", default="")
    score.add_argument("--text", default=None)
    score.add_argument("--lang", default=None)
    score.add_argument("--input", type=Path, help="JSONL with id, title, text, lang? per line")
    score.add_argument("--output", default="-", help="JSONL output file (default: stdout)")
    score.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    score.set_defaults(handler=cmd_score)

    train = sub.add_parser("train", help="train the model from labelled JSONL and write it with its manifest")
    train.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="directory of labelled JSONL (default: %(default)s)")
    train.add_argument("--data", type=Path, action="append", default=[], help="extra labelled JSONL; may repeat")
    train.add_argument("--out", type=Path, default=Path("models"), help="output directory (default: %(default)s)")
    train.add_argument("--feedback-from", type=Path, metavar="CONFIG", help="also train on analysts' labels stored in this config's database")
    train.set_defaults(handler=cmd_train)

    audit = sub.add_parser("audit-labels", help="list labels that a model fitted without them contradicts, for a second reading before retraining")
    audit.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="directory of labelled JSONL (default: %(default)s)")
    audit.add_argument("--data", type=Path, action="append", default=[], help="extra labelled JSONL; may repeat")
    audit.add_argument("--feedback-from", type=Path, metavar="CONFIG", help="also audit analysts' labels stored in this config's database")
    audit.add_argument("--folds", type=int, default=5, help="each example is scored by a model fitted on the other folds (default: %(default)s)")
    audit.add_argument("--margin", type=float, default=0.85, help="list a label when its out-of-fold probability is further than this from it (default: %(default)s)")
    audit.set_defaults(handler=cmd_audit_labels)

    feedback = with_config(sub.add_parser("feedback", help="record an analyst's labels for an alerted item, for retraining"))
    target = feedback.add_mutually_exclusive_group(required=True)
    target.add_argument("--alert", type=int, help="alert id (from 'alertd alerts')")
    target.add_argument("--item", type=int, help="stored item id")
    feedback.add_argument("--sanctions", type=int, choices=[0, 1], required=True)
    feedback.add_argument("--arms-transfer", type=int, choices=[0, 1], required=True)
    feedback.add_argument("--analyst", default=os.environ.get("USER", "analyst"))
    feedback.set_defaults(handler=cmd_feedback)

    evaluate = sub.add_parser("evaluate", help="precision, recall, F1, PR-AUC per label and language, beside a keyword baseline")
    evaluate.add_argument("--data", type=Path, required=True, help="labelled JSONL (id, lang, title, text, labels)")
    evaluate.add_argument("--texts", type=Path, default=None, help="when --data holds only ids and labels: directory of JSONL(.gz) corpora to join on id")
    evaluate.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    evaluate.add_argument("--json", action="store_true", help="print figures as JSON")
    evaluate.add_argument("--report", type=Path, default=None, help="write an HTML report with PR curves and confusion matrices here")
    evaluate.set_defaults(handler=cmd_evaluate)

    feeds = with_config(sub.add_parser("feeds", help="status and health of each feed; 'import FILE.opml' or 'export' the list"))
    feeds.add_argument("action", nargs="?", choices=["list", "import", "export"], default="list")
    feeds.add_argument("file", nargs="?", type=Path, help="with import: the OPML file to add to the config")
    feeds.add_argument("--json", action="store_true")
    feeds.set_defaults(handler=cmd_feeds)

    alerts = with_config(sub.add_parser("alerts", help="recent alerts with scores"))
    alerts.add_argument("--limit", type=int, default=20)
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(handler=cmd_alerts)

    deliveries = with_config(sub.add_parser(
        "deliveries", help="pending and dead deliveries; 'retry' re-queues dead ones; 'replay' resends delivered ones"))
    deliveries.add_argument("action", nargs="?", choices=["list", "retry", "replay", "enable"], default="list")
    deliveries.add_argument("--id", type=int, help="with retry: only this delivery")
    deliveries.add_argument("--subscriber", help="with retry: only this subscriber's; with replay: required")
    deliveries.add_argument("--since", type=_since, help="with replay: ISO time (UTC if no offset) or an age such as 90m, 6h, 2d")
    deliveries.add_argument("--all", action="store_true", help="with list: include delivered")
    deliveries.add_argument("--json", action="store_true")
    deliveries.set_defaults(handler=cmd_deliveries)
    return parser


def _settings(args) -> Settings:
    from alertd.log import configure_logging

    settings = load_settings(args.config)
    configure_logging(settings.daemon.log_level, settings.daemon.log_format)
    return settings


def cmd_check_config(args) -> int:
    settings = load_settings(args.config)
    from alertd.model.artifact import read_manifest, default_model_dir

    model_dir = settings.model.path or default_model_dir()
    manifest = read_manifest(Path(model_dir))
    print(f"{args.config}: OK ({len(settings.feeds)} feeds, {len(settings.subscribers)} subscribers, model {manifest.model_id})")
    return 0


def cmd_run(args) -> int:
    from alertd.daemon import Daemon, build_runtime

    settings = _settings(args)
    Daemon(build_runtime(settings), config_path=Path(args.config)).run()
    return 0


def cmd_poll_once(args) -> int:
    from alertd.daemon import build_runtime, run_cycle

    settings = _settings(args)
    runtime = build_runtime(settings)
    try:
        reports, delivered = run_cycle(runtime, due_only=args.due_only)
    finally:
        runtime.close()
    failed = [r for r in reports if r.error]
    structlog.get_logger("alertd").info(
        "cycle_done", feeds=len(reports), failed_feeds=len(failed), new_items=sum(r.new_items for r in reports),
        alerts=sum(r.alerts for r in reports), delivered=delivered.delivered, retrying=delivered.retried, dead=delivered.dead,
    )
    return 0


def _read_score_input(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    with (sys.stdin if str(path) == "-" else path.open(encoding="utf-8")) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "id" not in record:
                    raise ValueError("expected an object with at least 'id', 'title', 'text'")
                yield number, record, None
            except ValueError as exc:
                yield number, None, str(exc)


def cmd_score(args) -> int:
    from alertd.domain import Article
    from alertd.model import load_model
    from alertd.text.language import detect_language

    model = load_model(args.model)
    if args.input is None:
        if args.text is None and not args.title:
            raise AlertdError("give --title/--text for one article, or --input FILE.jsonl for a batch")
        text = args.text or ""
        article = Article(args.title, text, args.lang or detect_language(f"{args.title}\n{text}"))
        print(json.dumps({"id": None, **model.score([article])[0].as_dict()}, ensure_ascii=False))
        return 0

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    bad = 0
    batch: list[tuple[str, Article]] = []

    def flush() -> None:
        for (record_id, _), scores in zip(batch, model.score([a for _, a in batch])):
            out.write(json.dumps({"id": record_id, **scores.as_dict()}, ensure_ascii=False) + "\n")
        batch.clear()

    try:
        for number, record, error in _read_score_input(args.input):
            if error or record is None:
                bad += 1
                print(f"alertd: {args.input}:{number}: skipped: {error}", file=sys.stderr)
                continue
            title, text = str(record.get("title") or ""), str(record.get("text") or "")
            lang = record.get("lang") or detect_language(f"{title}\n{text}")
            batch.append((record["id"], Article(title, text, lang)))
            if len(batch) >= 100:
                flush()
        flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if bad else 0


def _labelled_examples(args) -> tuple[list, list[str]]:
    """The examples `train` and `audit-labels` read: the corpus, extra files, analysts' labels."""
    from alertd.model.corpus import corpus_files, read_examples

    paths = corpus_files(args.corpus) + list(args.data)
    if not paths and not args.feedback_from:
        raise AlertdError(f"no labelled JSONL under {args.corpus}")
    examples = list(read_examples(paths))
    sources = sorted({str(p.relative_to(args.corpus.parent)) if p.is_relative_to(args.corpus.parent) else p.name for p in paths})
    if args.feedback_from:
        from alertd.model.corpus import Example
        from alertd.store import open_store

        store = open_store(load_settings(args.feedback_from).database_url)
        rows = store.feedback_rows()
        store.close()
        examples += [
            Example(f"feedback-{r['item_id']}", r["lang"] or "", r["title"], r["summary"],
                    {"sanctions": r["sanctions"], "arms_transfer": r["arms_transfer"]})
            for r in rows
        ]
        sources.append(f"feedback: {len(rows)} analyst labels")
    return examples, sources


def _progress(command: str):
    """Progress of long work, on stderr so stdout stays the command's output."""
    return lambda message: print(f"{command}: {message}", file=sys.stderr, flush=True)


def cmd_train(args) -> int:
    from alertd.model.training import train

    examples, sources = _labelled_examples(args)

    progress = _progress("train")

    progress(f"read {len(examples)} examples from {len(sources)} sources")
    manifest = train(examples, args.out, sources, progress)
    print(json.dumps({"model_id": manifest.model_id, "thresholds": manifest.thresholds, "metrics": manifest.metrics}, indent=2))
    return 0


def cmd_audit_labels(args) -> int:
    from alertd.model.audit import suspects

    examples, sources = _labelled_examples(args)

    progress = _progress("audit-labels")

    progress(f"read {len(examples)} examples from {len(sources)} sources")
    found = suspects(examples, args.folds, args.margin, progress)
    print(f"{'id':<24} {'label':<14} {'given':>5} {'p':>6}  title")
    for s in found:
        print(f"{s.id:<24} {s.label:<14} {s.given:>5} {s.probability:>6.3f}  {s.title[:100]}")
    progress(f"{len(found)} labels contradicted by more than {args.margin}")
    return 0


def cmd_feedback(args) -> int:
    from alertd.clock import SystemClock
    from alertd.store import open_store

    settings = load_settings(args.config)
    store = open_store(settings.database_url)
    try:
        item_id = args.item if args.item is not None else store.item_id_for_alert(args.alert)
        if item_id is None:
            raise AlertdError(f"no alert with id {args.alert}; see 'alertd alerts'")
        store.record_feedback(item_id, {"sanctions": args.sanctions, "arms_transfer": args.arms_transfer}, args.analyst, SystemClock().now())
    finally:
        store.close()
    print(f"recorded labels for item {item_id}: sanctions={args.sanctions} arms_transfer={args.arms_transfer}")
    return 0


def cmd_evaluate(args) -> int:
    from dataclasses import asdict

    from alertd.model import load_model
    from alertd.model.evaluation import evaluate, format_table, join_labels, read_labelled

    model = load_model(args.model)
    examples = join_labels(args.data, args.texts) if args.texts else read_labelled([args.data])

    progress = _progress("evaluate")

    progress(f"{len(examples)} labelled examples, model {model.model_id}")
    result = evaluate(model, examples, progress)
    if args.json:
        print(json.dumps({"model": model.model_id, "figures": {g: {l: asdict(f) for l, f in per.items()} for g, per in result.model.items()},
                          "keyword_baseline": {g: {l: asdict(f) for l, f in per.items()} for g, per in result.baseline.items()}}, indent=2))
    else:
        print(format_table(result))
    if args.report:
        from alertd.model.report import write_report

        page = write_report(result, args.report, model.model_id, args.data.name)
        progress(f"report written to {page}")
    return 0


def _since(value: str):
    """Parse --since into a function of 'now', so relative ages use the clock at run time."""
    from datetime import datetime, timedelta, timezone

    units = {"m": 60, "h": 3600, "d": 86400}
    if value[:-1].isdigit() and value[-1:] in units:
        seconds = int(value[:-1]) * units[value[-1]]
        return lambda now: now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time or an age like 6h: {value!r}")
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return lambda now: when


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def cmd_feeds(args) -> int:
    if args.action == "import":
        return _feeds_import(args)
    if args.action == "export":
        from alertd.feeds.opml import OpmlFeed, render_opml

        settings = load_settings(args.config)
        print(render_opml([OpmlFeed(f.name, f.url, f.name, f.language, f.tags) for f in settings.feeds]), end="")
        return 0
    from alertd.store import open_store

    settings = load_settings(args.config)
    store = open_store(settings.database_url)
    states = store.feed_states()
    store.close()
    rows = []
    for feed in settings.feeds:
        s = states.get(feed.name)
        current = s is not None and (s.configured_url or s.url) == feed.url
        health = "new"
        if current:
            health = "disabled" if s.disabled_reason else ("healthy" if s.healthy else "UNHEALTHY")
        rows.append(
            {
                "name": feed.name,
                "url": s.url if current else feed.url,
                "health": health,
                "last_poll": _when(s.last_polled_at) if s else "never",
                "last_success": _when(s.last_success_at) if s else "never",
                "next_poll": _when(s.next_poll_at) if current and not s.disabled_reason else "-",
                "status": s.last_status if s and s.last_status else "-",
                "items": s.items_total if s else 0,
                "failures": s.consecutive_failures if s else 0,
                "failure": (s.last_failure or "") if s else "",
                "error": (s.disabled_reason or s.last_error or "") if s else "",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(_table([[r[k] for k in ("name", "health", "last_poll", "next_poll", "status", "items", "failures", "error")] for r in rows],
                     ["FEED", "HEALTH", "LAST POLL (UTC)", "NEXT POLL (UTC)", "HTTP", "ITEMS", "FAILURES", "LAST ERROR"]))
    return 0


def _feeds_import(args) -> int:
    """Append the OPML file's feeds that are not configured yet to the config file, validated first."""
    from alertd.feeds.opml import parse_opml, toml_entries

    if args.file is None:
        raise AlertdError("give the OPML file: alertd feeds import FILE.opml")
    settings = load_settings(args.config)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise AlertdError(f"cannot read {args.file}: {exc.strerror}")
    known_urls = {f.url for f in settings.feeds}
    found = parse_opml(data, taken=[f.name for f in settings.feeds])
    new = [f for f in found if f.url not in known_urls]
    if not new:
        print(f"{args.file}: {len(found)} feeds, all already configured")
        return 0
    config = Path(args.config)
    updated = config.read_text(encoding="utf-8").rstrip("\n") + f"\n\n# imported from {args.file.name}\n" + toml_entries(new)
    candidate = config.with_name(config.name + ".importing")
    candidate.write_text(updated, encoding="utf-8")
    try:
        load_settings(candidate)
        candidate.replace(config)  # atomic: the config is either the old one or the complete new one
    finally:
        candidate.unlink(missing_ok=True)
    print(f"{args.file}: added {len(new)} feeds to {config} ({len(found) - len(new)} already configured)")
    return 0


def cmd_alerts(args) -> int:
    from alertd.store import open_store

    settings = load_settings(args.config)
    store = open_store(settings.database_url)
    alerts = store.recent_alerts(args.limit)
    store.close()
    if args.json:
        print(json.dumps(alerts, indent=2, default=str, ensure_ascii=False))
        return 0
    rows = [
        [a["id"], _when(a["created_at"]), a["subscriber"], a["state"],
         " ".join(f"{k[:4]}={v:.2f}" for k, v in a["scores"]["scores"].items()), a["lang"] or "-", a["title"][:70],
         ", ".join(a["also_reported_by"]) or "-"]
        for a in alerts
    ]
    print(_table(rows, ["ALERT", "CREATED (UTC)", "SUBSCRIBER", "DELIVERY", "SCORES", "LANG", "TITLE", "ALSO REPORTED BY"]))
    return 0


def cmd_deliveries(args) -> int:
    from alertd.clock import SystemClock
    from alertd.store import open_store
    from alertd.store.database import DEAD, DELIVERED, DIGESTED, HELD, PENDING

    settings = load_settings(args.config)
    store = open_store(settings.database_url)
    try:
        if args.action == "enable":
            if not args.subscriber:
                raise AlertdError("enable needs --subscriber NAME")
            was_disabled = store.enable_endpoint(args.subscriber)
            print(f"endpoint of {args.subscriber} {'enabled again' if was_disabled else 'was not disabled'}")
            return 0
        if args.action == "replay":
            if not args.subscriber or args.since is None:
                raise AlertdError("replay needs --subscriber NAME and --since TIME")
            now = SystemClock().now()
            count = store.replay(args.subscriber, args.since(now), now)
            print(f"queued {count} deliver{'y' if count == 1 else 'ies'} to {args.subscriber} again")
            return 0
        if args.action == "retry":
            count = store.requeue_dead(SystemClock().now(), delivery_id=args.id, subscriber=args.subscriber)
            print(f"re-queued {count} dead deliver{'y' if count == 1 else 'ies'}")
            return 0
        states = (PENDING, HELD, DEAD, DELIVERED, DIGESTED) if args.all else (PENDING, HELD, DEAD)
        rows = store.deliveries(states)
        counts = store.delivery_counts()
        disabled = store.disabled_endpoints()
    finally:
        store.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2, default=str, ensure_ascii=False))
        return 0
    print(_table(
        [[d.id, d.alert_id, d.subscriber, d.channel, d.state, d.attempts, _when(d.next_attempt_at), (d.last_error or "")[:60]] for d in rows],
        ["ID", "ALERT", "SUBSCRIBER", "CHANNEL", "STATE", "ATTEMPTS", "NEXT ATTEMPT (UTC)", "LAST ERROR"],
    ))
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "outbox empty")
    for subscriber, reason in sorted(disabled.items()):
        print(f"endpoint of {subscriber} is DISABLED ({reason}); fix it, then: alertd deliveries enable --subscriber {subscriber}")
    return 0
