"""Server settings: one typed object, read from the environment once and validated.

Every field can be set as `VITRINE_<FIELD>` (e.g. `VITRINE_DEADLINE_MS=30`); `REDIS_URL` sets
`redis_url`. docs/configuration.md lists them all with their defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from server.blend import BlendConfig
from server.session_store import StoreConfig


class SettingsError(ValueError):
    pass


_BLEND, _STORE = BlendConfig(), StoreConfig()  # one source of truth for their defaults


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    model_store: Path = Path("models/store")
    data_dir: Path = Path("var")  # the embedded Redis keeps its socket and append-only file here
    redis_url: str | None = None  # unset: start the embedded Redis
    redis_timeout_ms: int = 1_000  # bound of every Redis call; reads further by the deadline
    deadline_ms: int = 20  # a recommendation request's budget, Redis round trip included
    default_k: int = 10
    max_k: int = 100
    max_batch_events: int = 500
    max_body_bytes: int = 1 << 20
    reload_interval_s: float = 2.0
    trending_cache_s: float = 1.0
    admin_token: str | None = None  # when set, admin endpoints require `Authorization: Bearer …`
    log_level: str = "info"
    # The blend (defaults: server/blend.py BlendConfig)
    user_weight: float = _BLEND.user_weight
    session_weight: float = _BLEND.session_weight
    context_weight: float = _BLEND.context_weight
    affinity_weight: float = _BLEND.affinity_weight
    session_half_life_s: float = _BLEND.session_half_life_s
    candidates: int = _BLEND.candidates
    max_category_share: float = _BLEND.max_category_share
    # Redis state (defaults: server/session_store.py StoreConfig)
    redis_prefix: str = _STORE.prefix
    session_ttl_s: int = _STORE.session_ttl_s
    recent_cap: int = _STORE.recent_cap
    affinity_half_life_s: float = _STORE.affinity_half_life_s
    trending_half_life_s: float = _STORE.trending_half_life_s
    dedup_ttl_s: int = _STORE.dedup_ttl_s

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65_535, "port must be 1..65535"),
            (self.workers >= 1, "workers must be >= 1"),
            (self.deadline_ms >= 1, "deadline_ms must be >= 1"),
            (1 <= self.default_k <= self.max_k, "default_k must be between 1 and max_k"),
            (self.max_batch_events >= 1 and self.max_body_bytes >= 1024, "batch/body limits too small"),
            (self.redis_timeout_ms >= 1, "redis_timeout_ms must be >= 1"),
            (0 < self.max_category_share <= 1, "max_category_share must be in (0, 1]"),
            (self.candidates >= self.max_k, "candidates must be >= max_k"),
            (self.log_level.lower() in ("debug", "info", "warning", "error"), "bad log_level"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"VITRINE_{f.name.upper()}")
            if f.name == "redis_url":
                raw = env.get("REDIS_URL", raw)
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def blend(self) -> BlendConfig:
        return BlendConfig(
            session_half_life_s=self.session_half_life_s, user_weight=self.user_weight,
            session_weight=self.session_weight, context_weight=self.context_weight,
            affinity_weight=self.affinity_weight, candidates=self.candidates,
            max_category_share=self.max_category_share)

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(
            prefix=self.redis_prefix, session_ttl_s=self.session_ttl_s, recent_cap=self.recent_cap,
            affinity_half_life_s=self.affinity_half_life_s,
            trending_half_life_s=self.trending_half_life_s, dedup_ttl_s=self.dedup_ttl_s,
            timeout_s=self.redis_timeout_ms / 1000)


def _parse(name: str, typ: Any, raw: str) -> Any:
    typ = str(typ)
    try:
        if typ.startswith("int"):
            return int(raw)
        if typ.startswith("float"):
            return float(raw)
        if typ.startswith("Path"):
            return Path(raw)
    except ValueError:
        raise SettingsError(f"VITRINE_{name.upper()}={raw!r}: expected {typ.split()[0]}") from None
    return raw
