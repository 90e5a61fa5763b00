"""The shipped unit passes systemd-analyze verify (when systemd-analyze exists)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

UNIT = ROOT / "systemd" / "alertd.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_verifies(tmp_path):
    """The unit is valid once ExecStart points at an installed alertd."""
    installed = Path(sys.executable).parent / "alertd"
    if not installed.exists():
        pytest.skip("alertd console script not installed next to this Python")
    unit = tmp_path / "alertd.service"
    unit.write_text(UNIT.read_text().replace("/opt/alertd/venv/bin/alertd", str(installed)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "alertd.service" not in result.stderr, result.stderr


def test_unit_runs_the_daemon_with_a_config():
    """ExecStart runs 'alertd run' with an explicit config."""
    exec_start = next(l for l in UNIT.read_text().splitlines() if l.startswith("ExecStart="))
    assert exec_start.split()[1:3] == ["run", "--config"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_exposure_is_at_most_2():
    """systemd-analyze security rates the sandbox at exposure 2.0 or lower."""
    import re

    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    found = re.search(r"Overall exposure level for alertd\.service: ([0-9.]+)", result.stdout)
    assert found, result.stdout[-500:] + result.stderr
    assert float(found.group(1)) <= 2.0


def test_unit_uses_notify_watchdog_and_credentials():
    """The unit waits for READY=1, expects watchdog pings and passes secrets as credentials."""
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "LoadCredential=", "DynamicUser=yes", "StateDirectory=alertd", "ConfigurationDirectory=alertd"):
        assert line in text, line
