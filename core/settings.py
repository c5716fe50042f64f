"""All configuration, read from the environment (or a `.env` file) once.

The embedded defaults run everything on one machine with no setup: SQLite and local files
under `var/`, a Temporal dev server on 127.0.0.1:7233. Point DATABASE_URL, TEMPORAL_ADDRESS
and S3_* at real servers for the scaled deployment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schema.abuse import DEFAULT_FLOOD, DEFAULT_LIMITS, AbusePolicy, SourceKind
from schema.escalation import check_reminders
from schema.states import SLA_TARGET, check_sla_overrides

ROOT = Path(__file__).resolve().parent.parent
# The city's clock: pages, charts, hour-of-day statistics and CAP times use it.
HCMC_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# The most pixels (width × height) an image may have: the upload refuses more from the
# header (api/imagecheck.py), and every accepted image can be rendered (api/media.py: a PNG,
# WebP or HEIC is decoded whole, 4 bytes a pixel, 256 MB at this size; above any phone
# camera's usual 48 MP). CANHBAO_MAX_IMAGE_PIXELS may lower it, never raise it.
MAX_IMAGE_PIXELS = 64_000_000
DEMO_SECRET = "demo-secret-key-change-me"  # noqa: S105 - refused outside demo mode


def _default_wards_geojson() -> str:
    shared = ROOT.parent / "shared" / "data" / "hcmc-wards-2025.geojson"
    return str(shared)


class Settings(BaseSettings):
    """Each field's description is what docs/configuration.md says of it (`make docs`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # --- files ---
    var_dir: Path = Field(
        default=ROOT / "var", alias="CANHBAO_VAR_DIR",
        description="Where the embedded defaults keep their files: the SQLite database, "
                    "local attachments, the demo VAPID key, the dev server's state and logs.")

    # --- database ---
    database_url: str = Field(
        default="", alias="DATABASE_URL",
        description="The SQL database (the read model, intake outbox, users, units), e.g. "
                    "`postgresql://user:pass@host:5432/canhbao` (psycopg 3). Empty: a SQLite "
                    "file, `canhbao.db` in CANHBAO_VAR_DIR.")
    db_pool_size: int = Field(
        default=10, alias="CANHBAO_DB_POOL_SIZE",
        description="Connections in each process's pool; a worker runs twice as many "
                    "activities at once (at least 10).")
    db_connect_timeout_s: int = Field(
        default=5, ge=2, le=60, alias="CANHBAO_DB_CONNECT_TIMEOUT_S",
        description="Seconds to wait for a new PostgreSQL connection before the database "
                    "counts as unreachable (libpq's connect_timeout: whole seconds, at least 2).")
    db_pool_timeout_s: float = Field(
        default=10.0, gt=0, le=120, alias="CANHBAO_DB_POOL_TIMEOUT_S",
        description="Seconds a request waits for a free connection of its process's pool; "
                    "then it is answered 503 `overloaded` with Retry-After (load is shed: "
                    "a busy pool is not an unreachable database).")
    db_retry_s: float = Field(
        default=5.0, gt=0, le=300, alias="CANHBAO_DB_RETRY_S",
        description="Seconds a database found unreachable is not tried again by intake "
                    "(reports go straight to a workflow meanwhile) and the Retry-After of "
                    "the 503 answers.")

    # --- Temporal ---
    temporal_address: str = Field(
        default="127.0.0.1:7233", alias="TEMPORAL_ADDRESS",
        description="The Temporal frontend: the dev server `make run` starts, a cluster, or "
                    "Temporal Cloud.")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE",
                                    description="The Temporal namespace.")
    task_queue: str = Field(default="canhbao", alias="CANHBAO_TASK_QUEUE",
                            description="The workers' task queue.")
    temporal_tls: bool = Field(default=False, alias="TEMPORAL_TLS",
                               description="Connect to Temporal over TLS (Temporal Cloud).")
    temporal_api_key: str | None = Field(default=None, alias="TEMPORAL_API_KEY",
                                         description="An API key for Temporal Cloud.")

    # --- object storage: local folder unless S3_BUCKET is set ---
    storage_dir: Path | None = Field(
        default=None, alias="CANHBAO_STORAGE_DIR",
        description="The local folder for attachments when S3_BUCKET is unset. Unset: "
                    "`files` in CANHBAO_VAR_DIR.")
    s3_bucket: str | None = Field(
        default=None, alias="S3_BUCKET",
        description="Keep attachments in this S3 or MinIO bucket (through boto3); the "
                    "bucket must exist. Unset: the local folder.")
    s3_endpoint_url: str | None = Field(default=None, alias="S3_ENDPOINT_URL",
                                        description="The S3 endpoint, for MinIO or another "
                                                    "S3-compatible server; unset: AWS.")
    s3_region: str = Field(default="us-east-1", alias="S3_REGION", description="The S3 region.")
    s3_access_key_id: str | None = Field(
        default=None, alias="S3_ACCESS_KEY_ID",
        description="S3 credentials; unset: boto3's usual sources (environment, instance role).")
    s3_secret_access_key: str | None = Field(default=None, alias="S3_SECRET_ACCESS_KEY",
                                             description="See S3_ACCESS_KEY_ID.")
    s3_presign_seconds: int = Field(
        default=300, alias="S3_PRESIGN_SECONDS",
        description="How long a presigned attachment URL given to staff stays valid.")

    # --- web/API ---
    host: str = Field(default="127.0.0.1", alias="CANHBAO_HOST",
                      description="The address the web/API server listens on.")
    port: int = Field(default=8000, alias="CANHBAO_PORT",
                      description="The port the web/API server listens on.")
    public_url: str | None = Field(
        default=None, alias="CANHBAO_PUBLIC_URL",
        description="The public address, for tracking links, Web Push, Open311 and CAP; "
                    "unset: the address of the request. An https URL turns on secure cookies.")
    secret_key: str = Field(
        default=DEMO_SECRET, alias="CANHBAO_SECRET_KEY",
        description="Signs sessions and tokens: a long random value. The built-in demo key is "
                    "refused outside demo mode.")
    session_hours: int = Field(
        default=12, alias="CANHBAO_SESSION_HOURS",
        description="How long a token or session lasts unless signed out first.")
    map_tile_url: str = Field(
        default="", alias="CANHBAO_MAP_TILE_URL",
        description="A map tile URL template (`https://…/{z}/{x}/{y}.png`); empty: maps draw "
                    "ward boundaries without tiles.")
    secure_cookies: bool = Field(
        default=False, alias="CANHBAO_SECURE_COOKIES",
        description="Cookies only over https (on by itself when CANHBAO_PUBLIC_URL is https).")
    forwarded_allow_ips: str = Field(
        default="", alias="CANHBAO_FORWARDED_ALLOW_IPS",
        description="Proxies (comma-separated addresses or networks) whose X-Forwarded-For "
                    "and X-Forwarded-Proto are believed; empty: none, the client address is "
                    "the peer's. Every way of serving (`make run`, `canhbao serve`, the image) "
                    "passes it to uvicorn.")

    # --- demo ---
    demo: bool = Field(
        default=False, alias="CANHBAO_DEMO",
        description="Demo mode (`make run` sets it): demo accounts and the built-in secret "
                    "key, logged loudly at start since such tokens can be forged.")
    demo_password: str = Field(default="demo-password", alias="CANHBAO_DEMO_PASSWORD",
                               description="The password of every demo account.")

    # --- incidents ---
    sla_scale: float = Field(
        default=1.0, gt=0, alias="CANHBAO_SLA_SCALE",
        description="Multiplies every deadline and reminder (0.05 for demos: twenty times "
                    "faster); fixed per incident when it is reported.")
    sla_overrides: dict[int, dict[str, float]] = Field(
        default_factory=dict, alias="CANHBAO_SLA",
        description="JSON overrides of the SLA table in seconds, e.g. "
                    "`{\"1\": {\"routed\": 120}}`; the rest keeps the defaults in "
                    "schema/states.py (priority 1: verify 1 min, route 2 min, acknowledge "
                    "3 min, on scene 15 min). Fixed per incident when it is reported.")
    sla_target: float = Field(
        default=SLA_TARGET, gt=0, le=1, alias="CANHBAO_SLA_TARGET",
        description="The share of real incidents that should meet each step's deadlines; "
                    "the statistics show it beside each compliance figure, which is red "
                    "below it.")
    reminders: list[float] = Field(
        default_factory=list, alias="CANHBAO_REMINDERS",
        description="Seconds between reminders once an overdue incident reached the top "
                    "escalation level, e.g. `[900, 1800, 3600]` (the last repeats); empty: "
                    "schema/escalation.py's defaults (15, 30, then every 60 minutes).")
    wards_geojson: str = Field(
        default_factory=_default_wards_geojson, alias="CANHBAO_WARDS_GEOJSON",
        description="The ward boundaries (GeoJSON) that locate reports and that "
                    "`canhbao import-wards` reads.")
    outside_city_m: float = Field(
        default=2000.0, alias="CANHBAO_OUTSIDE_CITY_M",
        description="A point farther than this many metres from every ward is flagged as "
                    "outside the city (the report is still taken).")
    duplicate_radius_m: float = Field(
        default=300.0, alias="CANHBAO_DUPLICATE_RADIUS_M",
        description="Possible duplicates shown to the operator: open incidents of the same "
                    "category within this many metres of a new report.")
    duplicate_window_min: float = Field(
        default=30.0, alias="CANHBAO_DUPLICATE_WINDOW_MIN",
        description="...and reported at most this many minutes before it.")

    # --- citizen additions (POST /track/{token}/info), per tracking token ---
    info_per_hour: int = Field(
        default=20, gt=0, alias="CANHBAO_INFO_PER_HOUR",
        description="Additions (text or photos) one tracking token may make in any hour; "
                    "past it 429 with Retry-After.")
    info_text_budget: int = Field(
        default=50_000, gt=0, alias="CANHBAO_INFO_TEXT_BUDGET",
        description="Characters of added text one report takes over its life (each text at "
                    "most 5,000); past it 429 saying photos are still taken.")

    # --- Web Push to reporters (core/vapid.py) and live location from the tracking page ---
    vapid_private_key: str = Field(
        default="", alias="CANHBAO_VAPID_PRIVATE_KEY",
        description="The VAPID private key: PEM text, or the raw 32-byte P-256 key in "
                    "base64url. Unset outside demo mode: push is off (GET /api/v1/push/key "
                    "says so); in demo mode one is generated once and kept in "
                    "`vapid_private.pem` in CANHBAO_VAR_DIR.")
    vapid_private_key_file: Path | None = Field(
        default=None, alias="CANHBAO_VAPID_PRIVATE_KEY_FILE",
        description="A file holding the VAPID private key, in place of "
                    "CANHBAO_VAPID_PRIVATE_KEY.")
    vapid_subject: str = Field(
        default="", alias="CANHBAO_VAPID_SUBJECT",
        description="Who push services may contact about our pushes: a mailto: or https: "
                    "URL (RFC 8292 `sub`); required for push outside demo mode.")
    push_test_origins: str = Field(
        default="", alias="CANHBAO_PUSH_TEST_ORIGINS",
        description="Origins (comma-separated) taken as push endpoints without https and on "
                    "a local address: a push-service stand-in for tests only. Empty in "
                    "production.")
    push_service_hosts: str = Field(
        default="fcm.googleapis.com,android.googleapis.com,*.push.services.mozilla.com,"
                "*.push.apple.com,*.notify.windows.com",
        alias="CANHBAO_PUSH_SERVICE_HOSTS",
        description="The browsers' push services the worker may send to (comma-separated "
                    "host names; a leading `*.` takes any subdomain), always on https port "
                    "443: any other endpoint is refused (422) and checked again before each "
                    "send (core/push_endpoint.py), so a subscription cannot make the worker "
                    "call an address of its choosing. Chrome/Edge (FCM), Firefox (Mozilla "
                    "autopush), Safari (Apple), Windows (WNS).")
    push_max_subscriptions: int = Field(
        default=5, gt=0, le=50, alias="CANHBAO_PUSH_MAX_SUBSCRIPTIONS",
        description="Browsers that may subscribe to one report's pushes.")
    push_ttl_s: int = Field(
        default=6 * 3600, ge=0, le=28 * 86400, alias="CANHBAO_PUSH_TTL_S",
        description="How long a push service keeps a notification it could not deliver yet.")
    push_interval_s: float = Field(default=2.0, gt=0, alias="CANHBAO_PUSH_INTERVAL_S",
                                   description="How often the worker sends queued pushes.")
    location_min_interval_s: float = Field(
        default=10.0, ge=0, alias="CANHBAO_LOCATION_MIN_INTERVAL_S",
        description="Live location: at most one position per tracking token in this many "
                    "seconds (429 sooner).")
    location_trail: int = Field(
        default=20, ge=1, le=500, alias="CANHBAO_LOCATION_TRAIL",
        description="Live location: how many of the latest positions the read model keeps "
                    "per incident.")

    # --- reports from one source (schema/abuse.py: marked as suspected spam, never refused) ---
    report_limit_device: str = Field(
        default=DEFAULT_LIMITS[SourceKind.DEVICE], alias="CANHBAO_REPORT_LIMIT_DEVICE",
        description="Reports one device id may send (`count/seconds`, comma-separated) before "
                    "the next ones are marked as suspected spam for the operator; a report is "
                    "never refused or dropped for it (schema/abuse.py says why these "
                    "figures). Empty: off.")
    report_limit_phone: str = Field(default=DEFAULT_LIMITS[SourceKind.PHONE],
                                    alias="CANHBAO_REPORT_LIMIT_PHONE",
                                    description="The same, per reporter phone number.")
    report_limit_address: str = Field(default=DEFAULT_LIMITS[SourceKind.ADDRESS],
                                      alias="CANHBAO_REPORT_LIMIT_ADDRESS",
                                      description="The same, per client address (IPv6 by "
                                                  "its /64).")
    flood_device: str = Field(
        default=DEFAULT_FLOOD[SourceKind.DEVICE], alias="CANHBAO_FLOOD_DEVICE",
        description="`count/seconds`: that many reports from one device within that many "
                    "seconds form a flood group, one console row to reject in one action (or "
                    "clear as not spam). Empty: no grouping.")
    flood_phone: str = Field(default=DEFAULT_FLOOD[SourceKind.PHONE], alias="CANHBAO_FLOOD_PHONE",
                             description="The same, per reporter phone number.")
    flood_address: str = Field(default=DEFAULT_FLOOD[SourceKind.ADDRESS],
                               alias="CANHBAO_FLOOD_ADDRESS",
                               description="The same, per client address.")

    # --- uploads ---
    max_image_bytes: int = Field(default=20 * 1024 * 1024, alias="CANHBAO_MAX_IMAGE_BYTES",
                                 description="The largest image, in bytes (20 MiB); more is 413.")
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS, gt=0, le=MAX_IMAGE_PIXELS, alias="CANHBAO_MAX_IMAGE_PIXELS",
        description="Pixels (width × height) an image may have; its header says, before "
                    "anything is stored (api/imagecheck.py), and more is 422 "
                    "`image_too_large`. At most MAX_IMAGE_PIXELS: what the previews can render.")
    max_video_bytes: int = Field(default=200 * 1024 * 1024, alias="CANHBAO_MAX_VIDEO_BYTES",
                                 description="The largest video, in bytes (200 MiB); more is 413.")

    # --- intake relay ---
    relay_interval_s: float = Field(
        default=2.0, alias="CANHBAO_RELAY_INTERVAL_S",
        description="How often the API process's relay starts workflows for stored reports "
                    "Temporal missed (core/outbox.py).")

    # --- logging ---
    log_level: str = Field(default="INFO", alias="CANHBAO_LOG_LEVEL",
                           description="The log level.")
    log_json: bool = Field(default=False, alias="CANHBAO_LOG_JSON",
                           description="Logs as JSON lines instead of text.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.sla_overrides = check_sla_overrides(self.sla_overrides)
        if self.reminders:
            self.reminders = check_reminders(self.reminders)
        _ = self.abuse_policy  # a limit that does not read stops the start (ValueError)
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / 'canhbao.db'}"
        if self.storage_dir is None:
            self.storage_dir = self.var_dir / "files"
        subject = self.vapid_subject.strip()
        if subject and not (subject.startswith("mailto:") and "@" in subject
                            or subject.startswith("https://")):
            raise ValueError("CANHBAO_VAPID_SUBJECT must be a mailto: address or an https: URL")
        if not self.demo and self.secret_key == DEMO_SECRET:
            raise ValueError(
                "CANHBAO_SECRET_KEY must be set to a long random value outside demo mode "
                "(CANHBAO_DEMO=1 accepts the built-in demo key)"
            )
        return self

    @property
    def abuse_policy(self) -> AbusePolicy:
        """The per-source report limits and flood figures (schema/abuse.py)."""
        k = SourceKind
        return AbusePolicy.parse(
            {k.DEVICE: self.report_limit_device, k.PHONE: self.report_limit_phone,
             k.ADDRESS: self.report_limit_address},
            {k.DEVICE: self.flood_device, k.PHONE: self.flood_phone,
             k.ADDRESS: self.flood_address})

    @property
    def async_database_url(self) -> str:
        return async_url(self.database_url)

    @property
    def sync_database_url(self) -> str:
        return sync_url(self.database_url)

    @property
    def cookies_secure(self) -> bool:
        """Cookies carry `Secure` when asked to or when the public URL is https."""
        return self.secure_cookies or (self.public_url or "").lower().startswith("https://")

    def is_push_service(self, host: str) -> bool:
        """Whether `host` (lower case) is one of CANHBAO_PUSH_SERVICE_HOSTS."""
        for entry in (e.strip().lower() for e in self.push_service_hosts.split(",")):
            if entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
                return True
            if entry and host == entry:
                return True
        return False

    @property
    def push_test_origin_set(self) -> frozenset[str]:
        """CANHBAO_PUSH_TEST_ORIGINS as a set of `scheme://host[:port]` (lower case)."""
        return frozenset(o.strip().rstrip("/").lower()
                         for o in self.push_test_origins.split(",") if o.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def async_url(url: str) -> str:
    """Normalise a database URL for the async engine (psycopg 3 or aiosqlite)."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if url.startswith("sqlite:///") or url.startswith("sqlite+pysqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


def sync_url(url: str) -> str:
    """The same database for synchronous use (alembic, the CLI)."""
    url = async_url(url)
    if url.startswith("sqlite+aiosqlite:///"):
        return "sqlite:///" + url.split(":///", 1)[1]
    return url  # psycopg 3 serves both


def setting_env_names() -> set[str]:
    """Every environment variable a Settings field reads (for checking deploy files)."""
    return {f.alias for f in Settings.model_fields.values() if f.alias}


@lru_cache
def get_settings() -> Settings:
    return Settings()
