"""One settings object, read from the environment, for the CLI, the API and the Dagster code location."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from ops_pipeline.errors import InvalidInput

# What we create under OPS_HOME (and the SQLite file, wherever it is) is private to the owner.
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600

# S3 settings: ours first, then the standard AWS names.
_S3_OPTIONS = {
    "AWS_ENDPOINT_URL": ("OPS_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
    "AWS_REGION": ("OPS_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    "AWS_ACCESS_KEY_ID": ("OPS_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    "AWS_SECRET_ACCESS_KEY": ("OPS_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    "AWS_SESSION_TOKEN": ("OPS_S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
    "AWS_ALLOW_HTTP": ("OPS_S3_ALLOW_HTTP", "AWS_ALLOW_HTTP"),
}


@dataclass(frozen=True)
class Settings:
    """Where things live and how to reach partners; see ARCHITECTURE section 2."""

    home: Path
    database_url: str
    lake_uri: str
    timezone: str = "UTC"
    lake_storage_options: Mapping[str, str] = field(default_factory=dict)
    bank_url: str | None = None
    partner_url: str | None = None
    g2p_bank_url: str | None = None  # the G2P sponsor bank; unset: the sandbox
    g2p_mapper_url: str | None = None  # the G2P ID mapper; unset: the sandbox
    g2p_max_attempts: int = 3  # tries per pipeline step before it stays ERROR
    smtp_url: str | None = None
    smtp_from: str = "ops-pipeline@localhost"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    alert_email: str | None = None
    fundout_alert_failure_rate: Decimal = Decimal("0.05")
    jwt_public_key: str | None = None
    tickets_group: str = "Ops"
    tickets_routes: Mapping[str, str] = field(default_factory=dict)
    recon_windows: Mapping[str, int] = field(default_factory=dict)  # settlement days per PSP (default 3)
    console_url: str = "http://127.0.0.1:8000/console"  # where people open the console (its links)
    dagster_url: str = "http://127.0.0.1:3000"  # the Dagster UI the console links to
    intake_commit_ms: int = 5  # group commit of posted operations: the longest wait for more requests
    intake_commit_rows: int = 20_000  # ... or until this many rows are queued
    log_retention_hours: int = 168  # files compaction replaced stay this long for readers of older versions
    _jwt_secret: str | None = None
    _encryption_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("OPS_HOME") or "./.ops").resolve()
        tz = env.get("OPS_TIMEZONE") or "UTC"
        try:
            ZoneInfo(tz)
        except Exception as exc:
            raise InvalidInput(f"OPS_TIMEZONE: {tz!r} is not an IANA time zone name") from exc
        lake_uri = env.get("OPS_LAKE_URI") or str(home / "lake")
        options: dict[str, str] = {}
        if lake_uri.startswith("s3://"):
            for option, names in _S3_OPTIONS.items():
                value = next((env[n] for n in names if env.get(n)), None)
                if value:
                    options[option] = value
            options.setdefault("AWS_REGION", "us-east-1")
            if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
                options.setdefault("AWS_ALLOW_HTTP", "true")
            options["conditional_put"] = "etag"  # put-if-absent commits: writers need no lock table
        return cls(
            home=home,
            database_url=env.get("OPS_DATABASE_URL") or f"sqlite:///{home / 'ops.db'}",
            lake_uri=lake_uri.rstrip("/"),
            timezone=tz,
            lake_storage_options=options,
            bank_url=env.get("OPS_BANK_URL") or None,
            partner_url=env.get("OPS_PARTNER_URL") or None,
            g2p_bank_url=env.get("OPS_G2P_BANK_URL") or None,
            g2p_mapper_url=env.get("OPS_G2P_MAPPER_URL") or None,
            g2p_max_attempts=_count(env, "OPS_G2P_MAX_ATTEMPTS", 3, 1, 1000),
            smtp_url=env.get("OPS_SMTP_URL") or None,
            smtp_from=env.get("OPS_SMTP_FROM") or "ops-pipeline@localhost",
            webhook_url=env.get("OPS_WEBHOOK_URL") or None,
            webhook_secret=env.get("OPS_WEBHOOK_SECRET") or None,
            alert_email=env.get("OPS_ALERT_EMAIL") or None,
            fundout_alert_failure_rate=_rate(env, "OPS_FUNDOUT_ALERT_FAILURE_RATE", "0.05"),
            jwt_public_key=env.get("OPS_JWT_PUBLIC_KEY") or None,
            tickets_group=(env.get("OPS_TICKETS_GROUP") or "Ops").strip(),
            tickets_routes=_routes(env.get("OPS_TICKETS_ROUTES") or ""),
            recon_windows=_windows(env.get("OPS_RECON_WINDOWS") or ""),
            console_url=(env.get("OPS_CONSOLE_URL") or "http://127.0.0.1:8000/console").rstrip("/"),
            dagster_url=(env.get("OPS_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
            intake_commit_ms=_count(env, "OPS_INTAKE_COMMIT_MS", 5, 0, 10_000),
            intake_commit_rows=_count(env, "OPS_INTAKE_COMMIT_ROWS", 20_000, 1, 1_000_000),
            log_retention_hours=_count(env, "OPS_LOG_RETENTION_HOURS", 168, 0, 100_000),
            _jwt_secret=env.get("OPS_JWT_SECRET") or None,
            _encryption_key=env.get("OPS_ENCRYPTION_KEY") or None,
        )

    def ticket_group(self, source: str) -> str:
        """The name of the group that gets the tickets a source (failed job, failed run, ...) opens."""
        return self.tickets_routes.get(source, self.tickets_group)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def jwt_secret(self) -> str:
        """HS256 key: `OPS_JWT_SECRET`, else one generated once per `OPS_HOME`."""
        return self._jwt_secret or _home_secret(self.home, "jwt_secret")

    @property
    def encryption_key(self) -> str:
        """Fernet key for fields encrypted at rest: `OPS_ENCRYPTION_KEY`, else one per `OPS_HOME`."""
        if self._encryption_key:
            return self._encryption_key
        from cryptography.fernet import Fernet

        return _home_secret(self.home, "encryption_key", lambda: Fernet.generate_key().decode())


def _rate(env: Mapping[str, str], name: str, default: str) -> Decimal:
    text = env.get(name) or default
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = Decimal(-1)
    if not 0 <= rate <= 1:
        raise InvalidInput(f"{name}: {text!r} is not a fraction between 0 and 1")
    return rate


def _count(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = (env.get(name) or str(default)).strip()
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise InvalidInput(f"{name}: {text!r} is not a whole number from {low:,} to {high:,}")
    return int(text)


def _routes(text: str) -> dict[str, str]:
    """`OPS_TICKETS_ROUTES`: `source=group` pairs separated by commas, e.g. `run_failure=Data,job=Ops`."""
    routes = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        source, _, group = (part.strip() for part in pair.partition("="))
        if not source or not group:
            raise InvalidInput(f"OPS_TICKETS_ROUTES: {pair!r} is not source=group")
        routes[source] = group
    return routes


def _windows(text: str) -> dict[str, int]:
    """`OPS_RECON_WINDOWS`: `psp=days` pairs separated by commas, e.g. `psp1=3,psp2=5`."""
    windows = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        psp, _, days = (part.strip() for part in pair.partition("="))
        if not psp or not days.isdigit():
            raise InvalidInput(f"OPS_RECON_WINDOWS: {pair!r} is not psp=days (days a whole number >= 0)")
        windows[psp] = int(days)
    return windows


def _home_secret(home: Path, name: str, make=lambda: secrets.token_urlsafe(48)) -> str:
    path = home / "secrets" / name
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")  # unique per thread too
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)  # never readable by others
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
        try:
            os.link(tmp, path)  # first writer wins, atomically
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents 0700 (only the owner may list or enter them); existing
    folders keep their mode."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 (only the owner may read or write it) unless it exists."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    return path
