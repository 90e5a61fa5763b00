"""Shared fixtures: real local servers, a real database (SQLite and, when reachable, PostgreSQL)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from servers import LocalHTTPServer, LocalSMTPServer  # noqa: E402

from alertd.model import load_model  # noqa: E402
from alertd.store import open_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
POSTGRES_URL = os.environ.get("ALERTD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Tests talk to servers on 127.0.0.1 only: a proxy set in the environment must not carry
# their requests elsewhere (the proxy tests pass their proxies explicitly).
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)


def _postgres_reachable() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES_AVAILABLE = _postgres_reachable()


@pytest.fixture
def http_server():
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook_receiver():
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server():
    server = LocalSMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shipped_model():
    return load_model(ROOT / "models")


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL pointing at a fresh schema, dropped afterwards."""
    if not POSTGRES_AVAILABLE:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = f"alertd_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alertd.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url):
    store = open_store(database_url)
    yield store
    store.close()


def shared_path(*parts: str) -> Path:
    """A file under the shared data folder, or a clean skip when it is not present."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {'/'.join(parts)}")
    return path


def assert_valid_payload(payload: dict) -> None:
    """Every webhook body the tests see must match the published JSON Schema."""
    import json

    import jsonschema

    schema = json.loads((ROOT / "docs" / "webhook-payload.v1.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(payload)


def daemon_config(tmp_path: Path, feed_url: str, webhook_url: str, secret: str, *, feed: str = "world",
                  interval: int = 3600, sections: str = "") -> str:
    """TOML for tests that run the real daemon: one feed, one webhook subscriber on loopback,
    fast delivery passes, no article-page fetches; ``sections`` adds further tables."""
    return f"""
[daemon]
state_dir = "{tmp_path / 'state'}"
delivery_interval_seconds = 0.2
log_format = "json"

[polling]
min_interval_seconds = 1

[articles]
min_summary_chars = 0
{sections}
[[feeds]]
name = "{feed}"
url = "{feed_url}"
interval_seconds = {interval}
jitter_seconds = 0

[[subscribers]]
name = "casework"
channel = "webhook"
webhook_url = "{webhook_url}"
webhook_secret = "{secret}"
allow_private_network = true
"""
