"""docker-compose.yml configures CanhBao only through settings the code really reads."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from core.settings import ROOT, Settings, setting_env_names

APP_SERVICES = ("api", "worker", "migrate")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_app_services_set_only_real_settings() -> None:
    known = setting_env_names()
    services = _compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        unknown = sorted(set(env) - known)
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"


def test_compose_has_the_scaled_deployment() -> None:
    services = _compose()["services"]
    for name in ("postgres", "temporal", "temporal-ui", "minio", "api", "worker"):
        assert name in services, name
    assert services["temporal"]["environment"]["DB"].startswith("postgres")


def test_compose_settings_parse(tmp_path: Path) -> None:
    """The values compose passes are accepted by Settings (types, secret refusal)."""
    env = dict(_compose()["services"]["api"]["environment"])
    env["CANHBAO_SECRET_KEY"] = "x" * 40
    env = {k: (v.split(":-", 1)[1].rstrip("}") if isinstance(v, str) and v.startswith("${")
               and ":-" in v else v) for k, v in env.items()}
    settings = Settings(**env)
    assert settings.s3_bucket == "canhbao-attachments"
    assert settings.async_database_url.startswith("postgresql+psycopg://")


def test_secret_key_refused_outside_demo() -> None:
    with pytest.raises(ValidationError, match="CANHBAO_SECRET_KEY"):
        Settings(CANHBAO_DEMO=False)


def test_sla_overrides_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """CANHBAO_SLA is JSON in the environment; a wrong priority, state or time is refused."""
    monkeypatch.setenv("CANHBAO_SLA", '{"1": {"routed": 90}}')
    assert Settings(CANHBAO_DEMO=True).sla_overrides == {1: {"routed": 90.0}}
    for bad in ('{"5": {"routed": 90}}', '{"1": {"closed": 90}}', '{"1": {"routed": 0}}'):
        monkeypatch.setenv("CANHBAO_SLA", bad)
        with pytest.raises(ValidationError, match="SLA"):
            Settings(CANHBAO_DEMO=True)
