"""One configuration for every `vitrine` command: nested sections, validated, from defaults, an
optional TOML file, the environment and command-line flags (later sources win).

Each field is `<section>.<field>` in the TOML file (`[redis]` / `url = "…"`) and
`VITRINE_<SECTION>_<FIELD>` in the environment (`VITRINE_REDIS_URL`); `REDIS_URL` is accepted
for `redis.url`. `vitrine config` prints every effective value and where it came from;
docs/configuration.md is generated from the descriptions below (`python -m server.settings`).

The sections are the configuration objects the code receives: the store gets `settings.redis`,
the ladder `settings.recommend`, so a default is written once, here.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

CONFIG_ENV = "VITRINE_CONFIG"
ENV_PREFIX = "VITRINE_"
ALIASES = {"REDIS_URL": ("redis", "url")}


class SettingsError(ValueError):
    """A setting has a bad value, or the file can't be read: the message names it."""


def _doc(text: str, **constraints: Any) -> Any:
    return msgspec.Meta(description=text, **constraints)


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerSettings(_Section):
    host: Annotated[str, _doc("address to listen on")] = "127.0.0.1"
    port: Annotated[int, _doc("TCP port (shared by the server's own workers)", ge=1, le=65_535)] = 8080
    workers: Annotated[int, _doc("server processes; the model files are memory-mapped and shared",
                                 ge=1, le=256)] = 1
    log_level: Annotated[str, _doc("`debug`, `info`, `warning` or `error`",
                                   pattern="^(?i:debug|info|warning|error)$")] = "info"
    admin_token: Annotated[str, _doc(
        "when set, admin endpoints need `Authorization: Bearer <token>`")] | None = None
    max_body_bytes: Annotated[int, _doc("request body limit (413 above)", ge=1024)] = 1 << 20
    max_batch_events: Annotated[int, _doc("events per `POST /v1/events` (413 above)", ge=1)] = 500
    demo: Annotated[bool, _doc("serve the demo storefront at `/demo/` (`vitrine demo` turns it on)")] = False


class RecommendSettings(_Section):
    deadline_ms: Annotated[int, _doc(
        "budget of one recommendation request; the Redis read gets at most 70% of what is left",
        ge=1)] = 20
    default_k: Annotated[int, _doc("items returned when `k` is not given", ge=1)] = 10
    max_k: Annotated[int, _doc("largest accepted `k`", ge=1, le=1000)] = 100
    user_weight: Annotated[float, _doc("weight of a known user's trained vector in the blend",
                                       ge=0)] = 0.5
    session_weight: Annotated[float, _doc("weight of the live session's folded-in vector", ge=0)] = 1.0
    context_weight: Annotated[float, _doc("weight of the page's context items (product, cart)",
                                          ge=0)] = 1.0
    affinity_weight: Annotated[float, _doc(
        "live category affinity added to the normalised score when re-ranking (0.25: within 0.005 "
        "of the offline Recall@20 on MovieLens, benchmarks/results/parity_movielens.md; 0.5 cost "
        "0.012)", ge=0)] = 0.25
    session_half_life_s: Annotated[float, _doc("recency decay of session items in the fold-in",
                                               gt=0)] = 3_600.0
    candidates: Annotated[int, _doc(
        "index candidates before filters and re-ranking (>= `max_k`); the search's cost grows with "
        "it, 100 leaves room for the filters and the diversity cap", ge=1)] = 100
    max_category_share: Annotated[float, _doc(
        "diversity: at most this share of `k` from one category (1 turns the cap off)",
        gt=0, le=1)] = 0.6
    exact_category_max: Annotated[int, _doc(
        "a category placement scores every item of a category up to this size exactly (cheaper "
        "than the index search, and nothing in it is missed)", ge=0)] = 10_000
    filter_scan_max: Annotated[int, _doc(
        "include-only rules (include, price bounds) keeping under half the items: their allowed "
        "items are scored exactly, the largest-norm first, up to this many (all of them below it: "
        "exact filtered search). On 1M items 5,000 already recalled 1.000 of the exact filtered "
        "top 20 at 10%, 1% and 0.1% (44 µs a query; 10,000: 117 µs; "
        "benchmarks/results/filtered_retrieval.md)", ge=100)] = 10_000
    session_reuse_ms: Annotated[int, _doc(
        "how long a live session's folded-in vector is reused while the session is unchanged (the "
        "placements of one page view ask within milliseconds); 0 turns reuse off", ge=0)] = 1_000
    trending_refresh_s: Annotated[float, _doc(
        "how often each worker refreshes its in-process trending lists from Redis", gt=0)] = 1.0


class CatalogSettings(_Section):
    refresh_s: Annotated[float, _doc(
        "how often each worker reads the merchandising rules' version (a change runs everywhere "
        "within this plus two round trips), and polls the live catalog's change log when its "
        "blocked read on it is down (otherwise a change arrives within a few ms: "
        "benchmarks/results/catalog_propagation.md)", gt=0, le=60)] = 0.2
    max_batch_items: Annotated[int, _doc("items per `PUT /v1/items` (413 above)", ge=1)] = 1_000
    rules_file: Annotated[Path, _doc(
        "merchandising rules (JSON or TOML, docs/catalog.md) applied at start when the file changed "
        "since it was applied last; a bad file is logged and the rules in Redis keep running")] | None = None
    max_rules: Annotated[int, _doc("merchandising rules kept (422 above)", ge=1, le=100_000)] = 1_000


class RedisSettings(_Section):
    url: Annotated[str, _doc(
        "`redis://`, `rediss://` or `unix://` URL of a Redis, Valkey or Redis Cluster node; unset "
        "starts the embedded Redis (also `REDIS_URL`)")] | None = None
    cluster: Annotated[bool, _doc("`url` is a node of a Redis Cluster")] = False
    timeout_ms: Annotated[int, _doc(
        "bound of every Redis call (events answer 503 past it); recommendation reads are further "
        "bounded by the deadline", ge=1)] = 1_000
    prefix: Annotated[str, _doc("namespace of every key (docs/redis.md)", min_length=1, max_length=32,
                                pattern="^[A-Za-z0-9_.-]+$")] = "vt"
    shards: Annotated[int, _doc(
        "event-stream and trending shards (`{g:0}` … `{g:N-1}`), so no single Redis Cluster slot "
        "takes every event; unset: 1 on a single Redis, 16 on a cluster. May be raised; lowered "
        "only after an export emptied the streams", ge=1, le=1024)] | None = None
    session_ttl_s: Annotated[int, _doc(
        "lifetime of a shopper's live state after their last event (30 days)", ge=1)] = 30 * 86_400
    recent_cap: Annotated[int, _doc("recent items kept per shopper", ge=1, le=10_000)] = 50
    affinity_half_life_s: Annotated[float, _doc("half-life of live category affinities", gt=0)] = 1_800.0
    trending_half_life_s: Annotated[float, _doc("half-life of trending counters", gt=0)] = 21_600.0
    trending_cap: Annotated[int, _doc("items kept per trending list and shard", ge=10)] = 10_000
    dedup_ttl_s: Annotated[int, _doc(
        "how long an event_id is remembered for idempotent retries (a day covers client retries "
        "and offline app queues; each accepted event costs a ~90-byte mark this long)",
        ge=60)] = 86_400
    stream_maxlen: Annotated[int, _doc(
        "cap per stream shard; unset: unbounded until exported (a cap drops the oldest unexported "
        "events when the export stalls)", ge=1000)] | None = None

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000

    @property
    def stream_shards(self) -> int:
        return self.shards or (16 if self.cluster else 1)


class ModelSettings(_Section):
    store: Annotated[Path, _doc(
        "directory of published model versions (`CURRENT` names the served one); `vitrine train` "
        "publishes here")] = Path("models/store")
    reload_interval_s: Annotated[float, _doc("how often `CURRENT` is checked for a new version",
                                             gt=0)] = 2.0


class DataSettings(_Section):
    dir: Annotated[Path, _doc(
        "data directory: the embedded Redis keeps its socket and append-only file in "
        "`<dir>/redis`")] = Path("var")


class ExperimentsSettings(_Section):
    file: Annotated[Path, _doc(
        "experiments document (JSON, docs/experiments.md) stored at start when it differs from the "
        "stored one; a bad file is reported and the stored document keeps running")] | None = None
    bandits: Annotated[bool, _doc(
        "update bandit experiments' weights on their schedule (one worker at a time)")] = True


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerSettings = ServerSettings()
    recommend: RecommendSettings = RecommendSettings()
    catalog: CatalogSettings = CatalogSettings()
    redis: RedisSettings = RedisSettings()
    model: ModelSettings = ModelSettings()
    data: DataSettings = DataSettings()
    experiments: ExperimentsSettings = ExperimentsSettings()

    def __post_init__(self) -> None:
        r = self.recommend
        if r.default_k > r.max_k:
            raise ValueError("recommend.default_k must be <= recommend.max_k")
        if r.candidates < r.max_k:
            raise ValueError("recommend.candidates must be >= recommend.max_k")

    def replace(self, **changes: Any) -> Settings:
        """A copy with `section.field` values changed: `s.replace(**{"server.port": 9000})`."""
        return load(env={}, base=self, overrides=changes).settings


SECTIONS: dict[str, type[_Section]] = {
    name: msgspec.inspect.type_info(Settings).fields[i].type.cls
    for i, name in enumerate(Settings.__struct_fields__)
}


def env_name(section: str, field: str) -> str:
    return f"{ENV_PREFIX}{section}_{field}".upper()


def fields() -> list[tuple[str, str, msgspec.inspect.Field]]:
    """(section, field, its type info) for every setting, in declaration order."""
    return [(section, f.name, f) for section, cls in SECTIONS.items()
            for f in msgspec.inspect.type_info(cls).fields]


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    sources: dict[str, str]  # "section.field" -> "default" | "file <path>" | "env NAME" | given source
    unknown: list[str]  # messages about VITRINE_* variables (and file keys) that set nothing


def load(env: Mapping[str, str] | None = None, *, file: Path | None = None, base: Settings | None = None,
         overrides: Mapping[str, Any] | None = None,
         override_sources: Mapping[str, str] | None = None) -> Loaded:
    """Defaults (or `base`) < the TOML `file` (default: $VITRINE_CONFIG) < `env` < `overrides`
    (`{"server.port": 9000}`; None values are skipped; `override_sources` names where each came
    from, e.g. "flag --port"). Raises SettingsError naming the setting."""
    env = os.environ if env is None else env
    known = {env_name(s, f): (s, f) for s, f, _ in fields()}
    raw: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    sources = {f"{s}.{f}": "default" for s, f, _ in fields()}
    if base is not None:
        for s, f, _ in fields():
            raw[s][f] = getattr(getattr(base, s), f)
    unknown: list[str] = []
    file = file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if file is not None:
        for (s, f), value in _read_file(file, unknown):
            raw[s][f] = value
            sources[f"{s}.{f}"] = f"file {file}"
    for name, (s, f) in ALIASES.items():
        if env.get(name) and not env.get(env_name(s, f)):
            raw[s][f] = env[name]
            sources[f"{s}.{f}"] = f"env {name}"
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        target = known.get(name)
        if target is None:
            unknown.append(_unknown(name, list(known)))
        elif value != "":
            raw[target[0]][target[1]] = value
            sources[f"{target[0]}.{target[1]}"] = f"env {name}"
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        s, _, f = dotted.partition(".")
        if s not in SECTIONS or f not in SECTIONS[s].__struct_fields__:
            raise SettingsError(f"unknown setting {dotted!r}")
        raw[s][f] = value
        sources[dotted] = (override_sources or {}).get(dotted, "given")
    return Loaded(_convert(raw, sources), sources, unknown)


def _convert(raw: dict[str, dict[str, Any]], sources: dict[str, str]) -> Settings:
    try:
        return msgspec.convert(raw, Settings, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message = str(exc)
        # "… - at `$.redis.timeout_ms`": name the setting and where its value came from.
        body, _, path = message.partition(" - at `$.")
        path = path.rstrip("`")
        if "." in path:
            s, f = path.split(".", 1)
            where = sources.get(path, "")
            name = env_name(s, f) if where.startswith("env") else path
            message = f"{name} ({where}): {body}"
        raise SettingsError(message) from None
    except ValueError as exc:  # cross-field checks in Settings.__post_init__
        raise SettingsError(str(exc)) from None


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ is Path and isinstance(obj, str | Path):
        return Path(obj)
    raise NotImplementedError(f"cannot convert {obj!r} to {typ}")


def _read_file(path: Path, unknown: list[str]) -> list[tuple[tuple[str, str], Any]]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    out = []
    for section, table in data.items():
        if section not in SECTIONS or not isinstance(table, dict):
            unknown.append(f"{path}: unknown section [{section}] (sections: {', '.join(SECTIONS)})")
            continue
        for field, value in table.items():
            if field in SECTIONS[section].__struct_fields__:
                out.append(((section, field), value))
            else:
                close = difflib.get_close_matches(field, SECTIONS[section].__struct_fields__, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                unknown.append(f"{path}: [{section}] has no setting {field!r}{hint}")
    return out


def _unknown(name: str, known: list[str]) -> str:
    # Names from before the sections (VITRINE_DEADLINE_MS) match their new name's tail.
    tail = [k for k in known if k.endswith("_" + name.removeprefix(ENV_PREFIX))]
    close = tail or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} is not a Vitrine setting and is ignored{hint}"


def markdown_table() -> str:
    """The settings table of docs/configuration.md, from the declarations above."""
    rows = ["| setting | environment | default | meaning |", "| --- | --- | --- | --- |"]
    defaults = Settings()
    for s, f, info in fields():
        value = getattr(getattr(defaults, s), f)
        shown = "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        name = env_name(s, f) + (" (or `REDIS_URL`)" if (s, f) == ("redis", "url") else "")
        rows.append(f"| `{s}.{f}` | `{name}` | `{shown}` | {_description(info)} |")
    return "\n".join(rows)


def _description(info: msgspec.inspect.Field) -> str:
    types = info.type.types if isinstance(info.type, msgspec.inspect.UnionType) else (info.type,)
    return next((t.extra_json_schema["description"] for t in types
                 if isinstance(t, msgspec.inspect.Metadata) and t.extra_json_schema), "")


if __name__ == "__main__":
    print(markdown_table())
