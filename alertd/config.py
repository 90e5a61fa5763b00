"""TOML configuration → validated, frozen settings.

Secrets never have to be written inline: every secret setting ``x`` also accepts
``x_env`` (name of an environment variable) and ``x_file`` (a file whose content is
the secret; relative paths are looked up in ``$CREDENTIALS_DIRECTORY`` when systemd
provides one). Every problem is reported with its file, key and a hint, all at once.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from dataclasses import dataclass
from datetime import time as dt_time
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from alertd.domain import LABELS
from alertd.errors import ConfigError

SECRET_KEYS = ("password", "webhook_secret", "apprise_urls")


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonSettings(_Section):
    state_dir: Path = Field(Path("state"), description="Directory for local state; the default SQLite database lives here.")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the database. Empty means SQLite at <state_dir>/alertd.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
    )
    delivery_interval_seconds: float = Field(10.0, gt=0, description="How often the delivery loop looks for due outbox rows.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest log level written: debug, info, warning or error.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: JSON when stdout is not a terminal (journald), readable console output on a terminal."
    )
    poll_workers: int = Field(4, ge=1, le=256, description="Feeds polled at the same time, over all hosts (at most this many feed requests in flight).")


class PollingSettings(_Section):
    min_interval_seconds: float = Field(
        60.0, ge=1, description="No feed is polled more often than this, whatever its interval or the server's cache headers say."
    )
    max_interval_seconds: float = Field(
        6 * 3600.0, ge=1, description="Cache-Control max-age, Expires and <ttl> may lengthen a feed's interval up to this, never more."
    )
    backoff_max_seconds: float = Field(
        86400.0, ge=1, description="Cap on the delay after consecutive failures (doubling from the feed's interval) and on Retry-After."
    )
    unhealthy_after_failures: int = Field(
        5, ge=1, description="Consecutive failures after which a feed is marked unhealthy, logged at warning and reported to operators."
    )
    per_host_connections: int = Field(2, ge=1, le=16, description="Requests in flight at once to any one host (feeds and article pages).")


class ArticleSettings(_Section):
    min_summary_chars: int = Field(
        200, ge=0, description="Fetch the article page when the feed's summary is shorter than this many characters; 0 turns this off."
    )
    max_pages_per_poll: int = Field(
        10, ge=0, description="Article pages fetched per feed poll at most; items beyond it are scored on their summary."
    )
    cache_days: float = Field(7.0, gt=0, description="How long an extracted article text (or a failure to get one) is kept and reused for the same URL.")


class StorySettings(_Section):
    enabled: bool = Field(True, description="Group near-duplicate articles into stories and alert each subscriber once per story.")
    similarity_threshold: float = Field(
        0.5, gt=0, le=1, description="Estimated Jaccard similarity of character shingles above which two articles are the same story."
    )
    window_hours: float = Field(72.0, gt=0, description="An article joins a story only if the story was last reported within this many hours.")


class HttpSettings(_Section):
    user_agent: str = Field(
        "alertd/0.1 (sanctions news monitor; polls feeds politely with conditional GET)",
        description="User-Agent sent with every request; add a contact address for feed owners.",
    )
    connect_timeout_seconds: float = Field(10.0, gt=0, description="Time allowed to open a connection.")
    read_timeout_seconds: float = Field(20.0, gt=0, description="Time allowed between bytes received.")
    total_timeout_seconds: float = Field(60.0, gt=0, description="Deadline for a whole request, however slowly the body drips.")
    max_body_bytes: int = Field(5_000_000, gt=0, description="Larger responses are abandoned and logged.")


class ModelSettings(_Section):
    path: Path | None = Field(
        None, description="Directory holding manifest.json and the model file. Empty means the shipped models/ directory."
    )


class DeliverySettings(_Section):
    retry_delays_seconds: tuple[float, ...] = Field(
        (5, 300, 1800, 7200, 18000, 36000, 36000),
        min_length=1,
        description="Wait after each failed attempt (±20 % jitter); after the last, the delivery is dead-lettered. "
        "The default follows the Standard Webhooks schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.",
    )
    lease_seconds: float = Field(120.0, gt=0, description="How long a claimed delivery is reserved before another worker may retry it.")
    batch_size: int = Field(50, ge=1, description="Deliveries claimed per pass of the delivery loop.")
    webhook_timeout_seconds: float = Field(15.0, gt=0, description="Timeout for one webhook request.")


class SmtpSettings(_Section):
    host: str = Field("127.0.0.1", description="SMTP server host.")
    port: int = Field(25, gt=0, lt=65536, description="SMTP server port.")
    security: Literal["none", "starttls", "tls"] = Field(
        "none", description="none, starttls (upgrade a plain connection) or tls (implicit TLS, usually port 465)."
    )
    ca_file: Path | None = Field(None, description="PEM file of CA certificates to trust for TLS (e.g. an internal CA); unset means the system's.")
    username: str = Field("", description="Login name; empty means no authentication.")
    password: SecretStr | None = Field(None, description="Login password (prefer password_env or password_file).")
    from_address: str = Field("alertd@localhost", description="Envelope and header sender of alert emails.")
    unsubscribe_address: str = Field(
        "", description="When set, alert and digest emails carry a List-Unsubscribe header pointing at this mailbox."
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout for the SMTP conversation.")


class FeedSettings(_Section):
    name: str = Field(description="Unique short name; used in logs, alerts and state.")
    url: str = Field(description="http(s) URL of the RSS or Atom feed.")
    interval_seconds: float = Field(900.0, ge=1, description="Time between polls of this feed.")
    jitter_seconds: float = Field(30.0, ge=0, description="Random delay added to each poll so feeds do not fire together.")
    tags: tuple[str, ...] = Field((), description="Free labels that subscribers can filter on.")
    language: str | None = Field(None, description="ISO 639-1 hint used when an item's language cannot be detected.")
    full_text: bool = Field(False, description="Always fetch each new item's article page and score its main text, whatever the summary's length.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class SubscriberSettings(_Section):
    name: str = Field(description="Unique subscriber name.")
    channel: Literal["email", "webhook", "apprise"] = Field(
        description="How alerts reach this subscriber: email, webhook, or apprise (chat and push services)."
    )
    email_to: tuple[str, ...] = Field((), description="Recipients, for channel = email.")
    webhook_url: str = Field("", description="Endpoint receiving signed POSTs, for channel = webhook.")
    webhook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks signing secret, whsec_<base64>; several separated by spaces while rotating "
        "(each signs; prefer webhook_secret_env or webhook_secret_file).",
    )
    apprise_urls: SecretStr | None = Field(
        None,
        description="Apprise URLs separated by spaces (slack://..., msteams://..., tgram://..., matrixs://...), for "
        "channel = apprise; they embed tokens, so prefer apprise_urls_env or apprise_urls_file.",
    )
    allow_private_network: bool = Field(
        False, description="Allow a webhook_url on a private, loopback or link-local address (refused by default)."
    )
    labels: tuple[Literal["sanctions", "arms_transfer"], ...] = Field(LABELS, description="Labels this subscriber wants alerts for.")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-label minimum probability, e.g. {sanctions = 0.6}; a label left out uses the model's own threshold.",
    )
    languages: tuple[str, ...] = Field((), description="Only articles in these languages (ISO 639-1); empty means all.")
    feed_tags: tuple[str, ...] = Field((), description="Only articles from feeds carrying one of these tags; empty means all.")
    feeds: tuple[str, ...] = Field((), description="Only articles from these feeds (by name); empty means all.")
    countries: tuple[str, ...] = Field(
        (),
        description="Only articles naming one of these states or groups: ISO 3166-1 alpha-2 codes (KP, IR, RU, ...) "
        "or ISIL, ALQAIDA; names are recognised in all supported languages. Empty means all.",
    )
    delivery_mode: Literal["immediate", "digest"] = Field(
        "immediate", description="immediate: one message per alert; digest: alerts gathered into one email per digest slot (email only)."
    )
    digest_every: Literal["hourly", "daily"] = Field("daily", description="How often a digest goes out.")
    digest_at: dt_time = Field(dt_time(8, 0), description="Local time of the daily digest (for hourly: the minute past the hour), e.g. \"08:00\".")
    timezone: str = Field("UTC", description="Time zone of digest_at, e.g. \"Asia/Jakarta\".")
    max_immediate_per_hour: int = Field(
        0, ge=0, description="At most this many immediate emails per hour; further alerts roll into the next digest. 0: no limit."
    )
    include_keywords: tuple[str, ...] = Field((), description="Only articles containing one of these words or phrases (any language, case-insensitive).")
    exclude_keywords: tuple[str, ...] = Field((), description="Never articles containing any of these words or phrases.")

    @field_validator("countries")
    @classmethod
    def _known_countries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from alertd.text.gazetteer import known_codes

        unknown = sorted(set(c.upper() for c in v) - known_codes())
        if unknown:
            raise ValueError(f"unknown country or group {', '.join(unknown)}; known: {', '.join(sorted(known_codes()))}")
        return tuple(c.upper() for c in v)
    operator: bool = Field(False, description="Also receive 'feed broken' and 'feed recovered' notices about feed health.")

    @field_validator("thresholds")
    @classmethod
    def _known_labels(cls, v: dict[str, float]) -> dict[str, float]:
        for label, value in v.items():
            if label not in LABELS:
                raise ValueError(f"unknown label {label!r}; known: {', '.join(LABELS)}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold for {label} must be between 0 and 1, got {value}")
        return v

    @model_validator(mode="after")
    def _channel_complete(self) -> "SubscriberSettings":
        if self.channel == "email" and not self.email_to:
            raise ValueError("channel 'email' needs email_to")
        if (self.delivery_mode == "digest" or self.max_immediate_per_hour) and self.channel != "email":
            raise ValueError("digests and max_immediate_per_hour are for channel 'email'")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}; use a name like Europe/Berlin or Asia/Jakarta")
        if self.channel == "apprise" and not (self.apprise_urls and self.apprise_urls.get_secret_value().split()):
            raise ValueError("channel 'apprise' needs apprise_urls (or apprise_urls_env / apprise_urls_file)")
        if self.channel == "webhook":
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ValueError("channel 'webhook' needs webhook_url starting with http:// or https://")
            if self.webhook_secret is None:
                raise ValueError("channel 'webhook' needs webhook_secret (or webhook_secret_env / webhook_secret_file)")
            secrets = self.webhook_secret.get_secret_value().split()
            if not secrets or not all(secret.startswith("whsec_") for secret in secrets):
                raise ValueError("webhook_secret must look like whsec_<base64> (several separated by spaces)")
            host = urlsplit(self.webhook_url).hostname or ""
            if not self.allow_private_network and is_private_literal(host):
                raise ValueError(f"webhook_url points at private address {host}; set allow_private_network = true if intended")
        return self


def is_private_literal(host: str) -> bool:
    """True for localhost and literal non-public IP addresses."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return False


class HealthSettings(_Section):
    enabled: bool = Field(False, description="Serve /healthz, /readyz and /metrics over HTTP.")
    host: str = Field("127.0.0.1", description="Address the health listener binds to; keep it on loopback unless a firewall guards it.")
    port: int = Field(9464, ge=0, lt=65536, description="Port of the health listener (0 picks a free one).")
    stale_after_seconds: float = Field(
        300.0, gt=0, description="A loop silent for longer is unhealthy: /healthz answers 503 and watchdog pings stop."
    )


class Settings(_Section):
    daemon: DaemonSettings = Field(default_factory=DaemonSettings, description="Process-wide behaviour.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="How feeds are fetched.")
    polling: PollingSettings = Field(default_factory=PollingSettings, description="When feeds are polled, backoff and health.")
    articles: ArticleSettings = Field(default_factory=ArticleSettings, description="Fetching article pages for their full text.")
    stories: StorySettings = Field(default_factory=StorySettings, description="Near-duplicate clustering: one alert per story.")
    model: ModelSettings = Field(default_factory=ModelSettings, description="Which classifier to load.")
    delivery: DeliverySettings = Field(default_factory=DeliverySettings, description="Outbox retry policy.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="Mail server for email subscribers.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Health and metrics listener.")
    feeds: tuple[FeedSettings, ...] = Field((), description="Feeds to poll.")
    subscribers: tuple[SubscriberSettings, ...] = Field((), description="Who gets alerts, and how.")

    @field_validator("feeds", "subscribers")
    @classmethod
    def _unique_names(cls, entries: tuple, info) -> tuple:
        kind = "feed" if info.field_name == "feeds" else "subscriber"
        names = [e.name for e in entries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate {kind} name {', '.join(repr(d) for d in duplicates)}")
        return entries

    @property
    def database_url(self) -> str:
        return self.daemon.database_url or f"sqlite:///{self.daemon.state_dir / 'alertd.db'}"

    def feed(self, name: str) -> FeedSettings:
        return next(f for f in self.feeds if f.name == name)

    def subscriber(self, name: str) -> SubscriberSettings:
        return next(s for s in self.subscribers if s.name == name)


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, resolve secret references and validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(file, "", "file not found", "pass --config with the path of your TOML file")])
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, "", f"cannot read: {exc}")])
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", f"not valid TOML: {exc}", "check quoting and brackets near that line")])

    problems: list[ConfigProblem] = []
    resolved = _resolve_secret_references(raw, environ, file, problems, ())
    try:
        settings = Settings.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(_problems_from_validation(exc, file, resolved))
        settings = None
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


def _resolve_secret_references(
    node: Any, environ: Mapping[str, str], file: str, problems: list[ConfigProblem], where: tuple[str | int, ...]
) -> Any:
    if isinstance(node, list):
        return [_resolve_secret_references(v, environ, file, problems, where + (i,)) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        base = key.removesuffix("_env").removesuffix("_file")
        if base in SECRET_KEYS and key != base:
            dotted = _dotted(where + (key,))
            if base in node or base in out:
                problems.append(ConfigProblem(file, dotted, f"set only one of {base}, {base}_env, {base}_file"))
                continue
            secret = _read_secret(key.endswith("_env"), value, environ, file, dotted, problems)
            if secret is not None:
                out[base] = secret
        else:
            out[key] = _resolve_secret_references(value, environ, file, problems, where + (key,))
    return out


def _read_secret(
    from_env: bool, ref: Any, environ: Mapping[str, str], file: str, dotted: str, problems: list[ConfigProblem]
) -> str | None:
    if not isinstance(ref, str) or not ref:
        problems.append(ConfigProblem(file, dotted, "must be a non-empty string"))
        return None
    if from_env:
        if ref not in environ:
            problems.append(ConfigProblem(file, dotted, f"environment variable {ref} is not set", f"export {ref}=... before starting"))
            return None
        return environ[ref]
    secret_path = Path(ref)
    if not secret_path.is_absolute() and environ.get("CREDENTIALS_DIRECTORY"):
        secret_path = Path(environ["CREDENTIALS_DIRECTORY"]) / secret_path
    try:
        return secret_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(ConfigProblem(file, dotted, f"cannot read secret file {secret_path}: {exc.strerror}", "check the path and permissions"))
        return None


def _problems_from_validation(exc: ValidationError, file: str, raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = _dotted(loc, raw)
        message = error["msg"].removeprefix("Value error, ")
        hint = ""
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
            hint = _suggest(loc)
        elif error["type"] == "missing":
            message = "required setting is missing"
            hint = _description(loc)
        problems.append(ConfigProblem(file, key, message, hint))
    return problems


def _dotted(loc: tuple[str | int, ...], raw: dict[str, Any] | None = None) -> str:
    """Turn ('feeds', 0, 'url') into 'feeds[0].url', naming the entry when it has a name."""
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            parts[-1] += f"[{part}]" + (f" ({name})" if name else "")
        else:
            parts.append(str(part))
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
    return ".".join(parts)


def _has(node: Any, part: str | int) -> bool:
    return (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and part < len(node))


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None
    return model


def _suggest(loc: tuple[str | int, ...]) -> str:
    model = _model_at(loc)
    if model is None:
        return ""
    known = list(model.model_fields) + [f"{k}_env" for k in SECRET_KEYS if k in model.model_fields] + [
        f"{k}_file" for k in SECRET_KEYS if k in model.model_fields
    ]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known settings here: {', '.join(model.model_fields)}"


def _description(loc: tuple[str | int, ...]) -> str:
    model = _model_at(loc)
    field = model.model_fields.get(str(loc[-1])) if model else None
    return field.description or "" if field else ""
