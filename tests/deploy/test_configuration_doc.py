"""docs/configuration.md's table of settings is what core/settings.py says today."""

import pytest

from core import settings_doc
from core.settings import Settings


def test_configuration_doc_is_up_to_date() -> None:
    current = settings_doc.DOC.read_text(encoding="utf-8")
    assert settings_doc.render(current) == current, (
        "docs/configuration.md differs from core/settings.py: run `make docs`")


def test_every_setting_is_described_in_its_section() -> None:
    listed = [name for _, names in settings_doc.sections() for name in names]
    assert sorted(listed) == sorted(Settings.model_fields)
    table = settings_doc.render_table()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description for docs/configuration.md"
        assert f"| `{field.alias}` |" in table


def test_a_changed_description_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    current = settings_doc.DOC.read_text(encoding="utf-8")
    field = Settings.model_fields["port"]
    monkeypatch.setattr(field, "description", "Another text.")
    assert "Another text." in settings_doc.render(current)
    assert settings_doc.render(current) != current
