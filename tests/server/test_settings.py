from dataclasses import fields
from pathlib import Path

import pytest

from server.settings import Settings, SettingsError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_environment_overrides_and_types():
    s = Settings.from_env({"VITRINE_DEADLINE_MS": "35", "REDIS_URL": "redis://h:6379/1",
                           "VITRINE_MODEL_STORE": "/srv/models", "VITRINE_AFFINITY_WEIGHT": "0.4"})
    assert s.deadline_ms == 35 and s.redis_url == "redis://h:6379/1"
    assert s.model_store == Path("/srv/models") and s.blend.affinity_weight == 0.4
    assert s.store.timeout_s == s.redis_timeout_ms / 1000


@pytest.mark.parametrize(("env", "message"), [
    ({"VITRINE_PORT": "eighty"}, "expected int"),
    ({"VITRINE_PORT": "70000"}, "port"),
    ({"VITRINE_DEFAULT_K": "500"}, "default_k"),
    ({"VITRINE_MAX_CATEGORY_SHARE": "0"}, "max_category_share"),
])
def test_bad_values_are_refused_with_the_setting_named(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_every_setting_is_documented_with_its_default():
    documented = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith(("VITRINE_", "REDIS_URL")):
            documented[cells[0]] = cells[2]
    defaults = Settings()
    assert sorted(documented) == sorted(f.name for f in fields(Settings))
    for name, text in documented.items():
        value = getattr(defaults, name)
        if value is None:
            assert text == "unset", name
        elif isinstance(value, int | float) and not isinstance(value, bool):
            assert float(text) == value, name
        else:
            assert text == str(value), name
