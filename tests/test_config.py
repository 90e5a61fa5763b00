"""Configuration: validation with located messages, secret references, documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from alertd.cli import main
from alertd.config import SECRET_KEYS, Settings, load_settings
from alertd.errors import ConfigError
from conftest import ROOT

SECRET = "whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0cw=="


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alertd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ or {})
    return [str(p) for p in info.value.problems]


class TestValidation:
    def test_example_config_is_valid(self):
        """The shipped example loads as it is."""
        settings = load_settings(ROOT / "config" / "alertd.example.toml", {})
        assert settings.feeds and settings.subscribers

    def test_every_problem_reported_with_file_and_key(self, tmp_path):
        """All problems come at once, each naming the file and the dotted key."""
        path = write(tmp_path, """
[daemon]
log_levle = "info"
[[feeds]]
name = "a"
url = "ftp://nope"
[[subscribers]]
name = "x"
channel = "email"
""")
        found = problems(path)
        assert len(found) == 3
        assert any("daemon.log_levle: unknown setting" in p and "did you mean 'log_level'" in p for p in found)
        assert any("feeds[0] (a).url" in p and "http" in p for p in found)
        assert any("subscribers[0] (x)" in p and "email_to" in p for p in found)
        assert all(p.startswith(str(path)) for p in found)

    def test_toml_syntax_error(self, tmp_path):
        """Broken TOML is reported with the parser's line and column."""
        found = problems(write(tmp_path, "[daemon\nx=1"))
        assert "not valid TOML" in found[0] and "line" in found[0]

    def test_missing_file(self, tmp_path):
        """A missing file is one clear problem."""
        assert "file not found" in problems(tmp_path / "nope.toml")[0]

    def test_duplicate_names_and_bad_thresholds(self, tmp_path):
        """Duplicate feed names and out-of-range thresholds are refused."""
        found = problems(write(tmp_path, f"""
[[feeds]]
name = "a"
url = "https://x.example/1"
[[feeds]]
name = "a"
url = "https://x.example/2"
[[subscribers]]
name = "w"
channel = "webhook"
webhook_url = "https://hooks.example/x"
webhook_secret = "{SECRET}"
thresholds = {{ sanctions = 1.5, weather = 0.2 }}
"""))
        assert any("duplicate feed name 'a'" in p for p in found)
        assert any("weather" in p or "between 0 and 1" in p for p in found)

    def test_check_config_exit_code_and_messages(self, tmp_path, capsys):
        """check-config prints problems to stderr and exits 2."""
        path = write(tmp_path, "[http]\nmax_body_bytes = -1\n")
        assert main(["check-config", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert "http.max_body_bytes" in err and "greater than 0" in err

    def test_run_refuses_invalid_config_with_same_messages(self, tmp_path, capsys):
        """The daemon does not start on an invalid config and says why, exit 2."""
        path = write(tmp_path, "[http]\nmax_body_bytes = -1\n")
        assert main(["run", "--config", str(path)]) == 2
        assert "http.max_body_bytes" in capsys.readouterr().err


class TestSecrets:
    def hook(self, tmp_path, secret_line: str) -> Path:
        return write(tmp_path, f"""
[[subscribers]]
name = "w"
channel = "webhook"
webhook_url = "https://hooks.example/x"
{secret_line}
""")

    def test_from_environment(self, tmp_path):
        """webhook_secret_env reads the named variable."""
        settings = load_settings(self.hook(tmp_path, 'webhook_secret_env = "HOOK_SECRET"'), {"HOOK_SECRET": SECRET})
        assert settings.subscribers[0].webhook_secret.get_secret_value() == SECRET

    def test_from_credentials_directory(self, tmp_path):
        """A relative *_file is read from $CREDENTIALS_DIRECTORY (systemd LoadCredential)."""
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "hook").write_text(SECRET + "\n")
        settings = load_settings(self.hook(tmp_path, 'webhook_secret_file = "hook"'), {"CREDENTIALS_DIRECTORY": str(creds)})
        assert settings.subscribers[0].webhook_secret.get_secret_value() == SECRET

    def test_unset_variable_and_unreadable_file(self, tmp_path):
        """A missing variable or file is named, with a hint."""
        assert "HOOK_SECRET is not set" in problems(self.hook(tmp_path, 'webhook_secret_env = "HOOK_SECRET"'))[0]
        assert "cannot read secret file" in problems(self.hook(tmp_path, 'webhook_secret_file = "/nonexistent/hook"'))[0]

    def test_two_sources_conflict(self, tmp_path):
        """Giving both the secret and a reference to it is an error, not a silent choice."""
        found = problems(self.hook(tmp_path, f'webhook_secret = "{SECRET}"\nwebhook_secret_env = "X"'), {"X": SECRET})
        assert "set only one of webhook_secret" in found[0]

    def test_secret_not_in_repr(self, tmp_path):
        """Secrets do not leak through printing the settings."""
        settings = load_settings(self.hook(tmp_path, f'webhook_secret = "{SECRET}"'), {})
        assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def _all_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            keys += _all_keys(inner, f"{name}[]." if annotation is not inner else f"{name}.")
        else:
            keys.append(prefix + name)
    return keys


class TestDocumentation:
    def test_every_setting_is_documented(self):
        """Each setting has help text in code and a row in docs/configuration.md."""
        doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
        keys = _all_keys(Settings)
        assert len(keys) > 30
        undocumented = [k for k in keys if f"`{k}`" not in doc]
        assert undocumented == []

    def test_every_setting_has_help_text(self):
        """Error hints use the description, so none may be empty."""
        def walk(model):
            for name, field in model.model_fields.items():
                assert field.description, f"{model.__name__}.{name} has no description"
                inner = getattr(field.annotation, "__args__", (field.annotation,))[0]
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    walk(inner)
        walk(Settings)

    def test_documented_keys_exist(self):
        """The reference lists no setting that the code does not have."""
        doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
        listed = set(re.findall(r"^\| `([a-z_\[\].]+)` \|", doc, re.M))
        assert listed == set(_all_keys(Settings))

    def test_secret_settings_are_secret_typed(self):
        """Every setting named as a secret is held as SecretStr."""
        from pydantic import SecretStr

        for key in _all_keys(Settings):
            if key.rsplit(".", 1)[-1] in SECRET_KEYS:
                section, name = key.split(".")
                model = Settings.model_fields[section.rstrip("[]")].annotation
                model = getattr(model, "__args__", (model,))[0]
                assert SecretStr in getattr(model.model_fields[name].annotation, "__args__", ())
