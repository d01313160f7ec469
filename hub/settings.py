"""One typed, frozen settings object, loaded once in the entry point and handed down.

Sources, later ones winning: the defaults below, a TOML file (``--config`` or
``HUB_CONFIG``), then ``HUB_<FIELD>`` environment variables (``HUB_DATABASE_URL``,
``HUB_AMQP_URL``, ...). Tuples are written comma-separated in the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hub.broker.topology import Topology
from hub.errors import ConfigurationError

ENV_PREFIX = "HUB_"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


# Settings earlier versions read, and what took their place: a process that still finds
# one refuses to start, rather than leave its callers locked out without a word.
RETIRED_SETTINGS = {
    "intake_token": "the client registry (hub client add; README, 'Who may call the hub')",
    "case_api_clients": "the client registry (hub client add; README, 'Who may call the hub')",
    "dashboard_tokens": "clients with --api monitoring (hub client add)",
}


def embedded_region_path() -> Path:
    """The sample region shipped inside the package (offices, endpoints, routes)."""
    return Path(str(resources.files("hub") / "defaults" / "region.toml"))


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the hub, with safe defaults for a single machine."""

    var_dir: Path = Path("var")
    database_url: str = ""
    # One amqp URL, or a RabbitMQ cluster's nodes as several URLs separated by commas:
    # every connection tries them in turn (hub/broker/connection.py).
    amqp_url: str = DEFAULT_AMQP_URL
    queue_prefix: str = "hub"
    region_path: Path = field(default_factory=embedded_region_path)
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # HTTPS for ``hub serve``: a PEM certificate (with its chain) and its private key.
    # With ``tls_client_ca``, callers may present a client certificate that CA issued
    # (mTLS); ``tls_require_client_certificate`` refuses the handshake without one.
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_require_client_certificate: bool = False
    log_format: str = "console"
    log_level: str = "info"
    prefetch: int = 20
    # Unacked messages per delivery shard per worker process (quorum queues bound them
    # per consumer only); with the shards of both lanes they feed the process's
    # worker_threads handler threads (docs/broker.md).
    delivery_prefetch: int = 4
    # Handler threads per worker process. On two cores 4 carried more than 8 (the core
    # benchmark: 86 against 70 documents/s on PostgreSQL, 82 against 49 on SQLite, whose
    # one writer the threads queue for); more pay where destinations are slow.
    worker_threads: int = 4
    # The delivery queues: this many shards in each of two lanes (normal, bulk). An
    # endpoint's deliveries go to the shard its name hashes to, so the number of queues
    # is a constant whatever the region's size.
    delivery_shards: int = 2
    # Deliveries to one endpoint in flight at once in one worker process; the rest wait
    # in the hold tiers without using an attempt, so a slow system holds few threads.
    endpoint_concurrency: int = 2
    # Delay tiers (seconds) for deliveries held back (endpoint busy, circuit open): each
    # hold of one delivery waits in the next tier (these and retry_delays_s together),
    # up to hold_max_s.
    hold_delays_s: tuple[int, ...] = (1, 5, 30)
    hold_max_s: int = 600
    # A token bucket of burst_deliveries refilled over burst_window_s, per office at the
    # relay and per endpoint in each routing process: past it, further documents are
    # routed and delivered in the bulk lanes, so the others do not queue behind a burst.
    # 0 turns lanes off.
    burst_deliveries: int = 200
    burst_window_s: float = 60.0
    relay_batch_size: int = 500
    relay_idle_s: float = 0.05
    poll_interval_s: float = 1.0
    # Mailboxes a polling channel drains at once (a channel's ``concurrency`` option wins):
    # each mostly waits on the platform, so a region's sweep overlaps those waits.
    poll_concurrency: int = 8
    delivery_timeout_s: float = 10.0
    delivery_lease_s: float = 60.0
    retry_delays_s: tuple[int, ...] = (10, 60, 600, 3600)
    # A delivery is retried (the last tier repeating: hourly) until it is max_age_s old,
    # or has had max_attempts attempts, whichever comes first; then it is dead-lettered.
    max_attempts: int = 100
    max_age_s: float = 72 * 3600
    broker_backoff_max_s: float = 30.0
    singleton_lease_s: float = 15.0
    receipt_deadline_s: float = 14 * 24 * 3600
    audit_checkpoint_s: float = 300.0
    breaker_failure_threshold: int = 5
    breaker_cool_down_s: float = 30.0
    keystore_dir: Path | None = None
    keystore_password: str = ""
    trust_store_dir: Path | None = None
    # The dashboard's people: "name:role:password-hash" entries (role viewer, operator or
    # admin; the hash from ``hub dashboard-user``), separated by commas or whitespace.
    dashboard_users: str = ""
    # Signs session cookies; empty means a random key per start (sessions end on restart).
    dashboard_secret_key: str = ""
    # "auto": the session cookie is Secure and __Host- prefixed when the request came over
    # TLS; "always": also on plain HTTP, for a dashboard behind a proxy that ends TLS.
    dashboard_cookie_secure: str = "auto"
    # A login lasts at most this long, and ends sooner after this long without a request.
    dashboard_session_lifetime_s: float = 8 * 3600
    dashboard_session_idle_s: float = 30 * 60
    # After this many failed logins of one account or from one address, each further try
    # waits dashboard_login_backoff_s, doubling per failure up to the maximum; failures
    # older than the maximum are forgotten.
    dashboard_login_failures_allowed: int = 5
    dashboard_login_backoff_s: float = 30.0
    dashboard_login_backoff_max_s: float = 15 * 60
    alert_webhook_url: str = ""
    alert_interval_s: float = 60.0
    alert_dead_window_s: float = 900.0
    alert_open_circuit_s: float = 600.0
    # How long a document may wait for its endpoint before the backlog alert fires, until
    # the service catalogue carries statutory deadlines (an endpoint's region options may
    # set its own ``max_backlog_age_s``).
    alert_max_backlog_age_s: float = 3600.0
    # Refused input is kept this long; ``hub quarantine prune`` removes what is older.
    quarantine_retention_days: int = 90
    # How often (at most) a running process looks whether the region file changed, and
    # takes the new catalogue if it is valid; 0 keeps the region read at start.
    region_reload_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.database_url:
            sqlite_path = (self.var_dir / "hub.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite:///{sqlite_path}")
        if self.keystore_dir is None:
            object.__setattr__(self, "keystore_dir", self.var_dir / "keys")
        if self.trust_store_dir is None:
            object.__setattr__(self, "trust_store_dir", self.var_dir / "trust")
        _check_broker_urls(self.amqp_url)
        if self.log_format not in {"console", "json"}:
            raise ConfigurationError(
                f"log_format must be 'console' or 'json', not {self.log_format!r}"
            )
        if not self.retry_delays_s or any(delay <= 0 for delay in self.retry_delays_s):
            raise ConfigurationError("retry_delays_s must list positive whole seconds")
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.prefetch < 1 or self.delivery_prefetch < 1:
            raise ConfigurationError("prefetch and delivery_prefetch must be at least 1")
        self._check_delivery()
        if self.max_age_s <= 0:
            raise ConfigurationError("max_age_s must be positive")
        if self.dashboard_cookie_secure not in {"auto", "always"}:
            raise ConfigurationError(
                f"dashboard_cookie_secure must be 'auto' or 'always', "
                f"not {self.dashboard_cookie_secure!r}"
            )
        if self.region_reload_s < 0:
            raise ConfigurationError("region_reload_s must be 0 (never) or positive")
        if self.quarantine_retention_days < 1:
            raise ConfigurationError("quarantine_retention_days must be at least 1")

    def _check_delivery(self) -> None:
        if self.poll_concurrency < 1:
            raise ConfigurationError("poll_concurrency must be at least 1")
        if min(self.worker_threads, self.delivery_shards, self.endpoint_concurrency) < 1:
            raise ConfigurationError(
                "worker_threads, delivery_shards and endpoint_concurrency must be at least 1"
            )
        if not self.hold_delays_s or any(delay <= 0 for delay in self.hold_delays_s):
            raise ConfigurationError("hold_delays_s must list positive whole seconds")
        if self.burst_deliveries < 0 or self.burst_window_s <= 0:
            raise ConfigurationError("burst_deliveries must be 0 or more, burst_window_s positive")

    @classmethod
    def load(
        cls, config_path: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from defaults, an optional TOML file and the environment.

        Raises:
            ConfigurationError: the file is missing or invalid, or a value has the wrong type.
        """
        environ = os.environ if environ is None else environ
        path = config_path or _path_or_none(environ.get(f"{ENV_PREFIX}CONFIG"))
        values: dict[str, Any] = _read_toml(path) if path else {}
        _refuse_retired(
            [
                *values,
                *(key[len(ENV_PREFIX) :].lower() for key in environ if key.startswith(ENV_PREFIX)),
            ]
        )
        values.update(_from_environment(environ))
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from a mapping of field names to raw values."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigurationError(f"unknown settings: {', '.join(unknown)}")
        if isinstance(values.get("amqp_url"), list):
            # A TOML file may list a cluster's nodes as an array.
            values = {**values, "amqp_url": ",".join(str(url) for url in values["amqp_url"])}
        coerced = {name: _coerce(name, known[name].type, raw) for name, raw in values.items()}
        return cls(**coerced)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (values already typed)."""
        return dataclasses.replace(self, **changes)

    @property
    def keys(self) -> Path:
        """The keystore folder (``keystore_dir``, default ``<var_dir>/keys``)."""
        assert self.keystore_dir is not None
        return self.keystore_dir

    @property
    def trust(self) -> Path:
        """The trust store folder of CA certificates (default ``<var_dir>/trust``)."""
        assert self.trust_store_dir is not None
        return self.trust_store_dir

    @property
    def delay_tiers_s(self) -> tuple[int, ...]:
        """Every delay tier the broker has: the retry tiers and the hold tiers."""
        return tuple(sorted({*self.retry_delays_s, *self.hold_delays_s}))

    @property
    def topology(self) -> Topology:
        """The queues and exchanges of this hub (its prefix, shards and delay tiers)."""
        return Topology(self.queue_prefix, self.delivery_shards, self.delay_tiers_s)

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is SQLite (one writer at a time, file under ``var_dir``)."""
        return self.database_url.startswith("sqlite")


def _check_broker_urls(amqp_url: str) -> None:
    urls = [url.strip() for url in amqp_url.split(",")]
    if not all(url.startswith(("amqp://", "amqps://")) for url in urls):
        raise ConfigurationError(
            f"amqp_url must be an amqp:// URL, or several separated by commas (a cluster's "
            f"nodes), not {_without_passwords(urls)!r}"
        )


def _without_passwords(urls: list[str]) -> str:
    # The value may carry a broker password: name the URLs without their credentials.
    return ",".join(url.rpartition("@")[2] for url in urls)


def _refuse_retired(names: list[str]) -> None:
    retired = sorted(set(names) & set(RETIRED_SETTINGS))
    if retired:
        moves = "; ".join(f"{name} -> {RETIRED_SETTINGS[name]}" for name in retired)
        raise ConfigurationError(f"settings no longer read: {moves}")


def _path_or_none(text: str | None) -> Path | None:
    return Path(text) if text else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"settings file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"settings file {path} is not valid TOML: {exc}") from exc
    # The file may keep the hub's settings under [hub] so it can share a file with others.
    section = data.get("hub", data)
    if not isinstance(section, dict):
        raise ConfigurationError(f"settings file {path}: [hub] must be a table")
    return section


def _from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    names = {f.name for f in dataclasses.fields(Settings)}
    found = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in names:
                found[name] = value
    return found


def _coerce(name: str, annotation: object, raw: Any) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("Path"):
            return Path(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return _boolean(raw)
        if kind.startswith("tuple"):
            items = raw.split(",") if isinstance(raw, str) else raw
            return tuple(int(item) for item in items)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"setting {name}: {raw!r} is not a valid {kind}") from exc


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(text)
