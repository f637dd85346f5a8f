"""The one configuration: sources in order, validation naming the setting, unknown names
reported, the documentation generated from the declarations."""

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError, load, markdown_table
from vitrine.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_environment_overrides_and_types():
    s = load({"VITRINE_RECOMMEND_DEADLINE_MS": "35", "REDIS_URL": "redis://h:6379/1",
              "VITRINE_MODEL_STORE": "/srv/models", "VITRINE_RECOMMEND_AFFINITY_WEIGHT": "0.4",
              "VITRINE_REDIS_CLUSTER": "false"}).settings
    assert s.recommend.deadline_ms == 35 and s.redis.url == "redis://h:6379/1"
    assert s.model.store == Path("/srv/models") and s.recommend.affinity_weight == 0.4
    assert s.redis.cluster is False  # "false" is false, not a truthy string
    assert s.redis.timeout_s == s.redis.timeout_ms / 1000
    assert load({"VITRINE_REDIS_CLUSTER": "true"}).settings.redis.stream_shards == 16


@pytest.mark.parametrize(("env", "message"), [
    ({"VITRINE_SERVER_PORT": "eighty"}, "VITRINE_SERVER_PORT .*Expected `int`"),
    ({"VITRINE_SERVER_PORT": "70000"}, "VITRINE_SERVER_PORT .*<= 65535"),
    ({"VITRINE_RECOMMEND_DEFAULT_K": "500"}, "default_k must be <= recommend.max_k"),
    ({"VITRINE_RECOMMEND_MAX_CATEGORY_SHARE": "0"}, "MAX_CATEGORY_SHARE .*> 0"),
    ({"VITRINE_REDIS_CLUSTER": "maybe"}, "VITRINE_REDIS_CLUSTER .*bool"),
])
def test_bad_values_are_refused_with_the_setting_named(env, message):
    with pytest.raises(SettingsError, match=message):
        load(env)


def test_file_then_environment_then_flags_each_say_where_a_value_came_from(tmp_path):
    config = tmp_path / "vitrine.toml"
    config.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[model]\nstore = "/from/file"\n'
                      '[redis]\ntimeot_ms = 5\n[nosuch]\nx = 1\n')
    loaded = load({"VITRINE_SERVER_PORT": "9100", "VITRINE_CONFIG": str(config), "VITRINE_DEADLINE_MS": "3"},
                  overrides={"model.store": Path("/from/flag")}, override_sources={"model.store": "flag"})
    s = loaded.settings
    assert (s.server.port, s.server.host, s.model.store) == (9100, "0.0.0.0", Path("/from/flag"))
    assert loaded.sources["server.port"] == "env VITRINE_SERVER_PORT"
    assert loaded.sources["server.host"] == f"file {config}"
    assert loaded.sources["model.store"] == "flag" and loaded.sources["data.dir"] == "default"
    unknown = "\n".join(loaded.unknown)
    assert "did you mean VITRINE_RECOMMEND_DEADLINE_MS" in unknown  # a name from before the sections
    assert "did you mean 'timeout_ms'" in unknown and "unknown section [nosuch]" in unknown


def test_a_broken_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = ")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load({}, file=bad)
    with pytest.raises(SettingsError, match="cannot read"):
        load({}, file=tmp_path / "missing.toml")


def test_every_setting_is_documented_with_its_default():
    text = DOCS.read_text()
    assert markdown_table() in text, "docs/configuration.md is stale: run `python -m vitrine.docs`"
    defaults = Settings()
    assert defaults.recommend.candidates == 100 and "| `recommend.candidates` |" in text


def test_vitrine_config_prints_values_and_sources(monkeypatch, capsys):
    monkeypatch.setenv("VITRINE_RECOMMEND_DEADLINE_MS", "42")
    monkeypatch.setenv("VITRINE_DEADLNE_MS", "1")
    monkeypatch.setenv("VITRINE_SERVER_ADMIN_TOKEN", "do-not-print")
    assert main(["config"]) == 0
    out, err = capsys.readouterr()
    line = next(x for x in out.splitlines() if x.startswith("recommend.deadline_ms"))
    assert "42" in line and "env VITRINE_RECOMMEND_DEADLINE_MS" in line
    assert "do-not-print" not in out and "VITRINE_DEADLNE_MS is not a Vitrine setting" in err


def test_a_bad_setting_stops_a_command_with_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("VITRINE_SERVER_PORT", "eighty")
    with pytest.raises(SystemExit) as exit_:
        main(["config"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("vitrine: bad setting: VITRINE_SERVER_PORT") and "Traceback" not in err
