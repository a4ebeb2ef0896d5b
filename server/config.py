"""Settings from the environment, with the embedded defaults (SQLite file, in-process worker)."""

import os
from dataclasses import dataclass, field


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DATABASE_URL", "sqlite://pipewright.db"))
    broker_url: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_BROKER_URL", ""))
    host: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int("PIPEWRIGHT_PORT", 8000))
    # The engine's limits and clocks; durations carry their unit in the name.
    max_chain_depth: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_CHAIN_DEPTH", 10))
    max_attempts: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_ATTEMPTS", 5))
    retry_base_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_RETRY_BASE_MS", 2000))
    # A rule whose last this many runs failed pauses itself and tells the admins (0: never).
    pause_after_failures: int = field(default_factory=lambda: _int("PIPEWRIGHT_PAUSE_AFTER_FAILURES", 5))
    # Re-runs and backfills are made due this many at a time, one batch every interval, behind live work.
    rerun_batch: int = field(default_factory=lambda: _int("PIPEWRIGHT_RERUN_BATCH", 50))
    rerun_interval_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_RERUN_INTERVAL_MS", 1000))
    lease_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_LEASE_S", 60))
    poll_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_POLL_MS", 500))
    sweep_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_SWEEP_MS", 5000))
    worker_threads: int = field(default_factory=lambda: _int("PIPEWRIGHT_WORKER_THREADS", 8))
    # development: GraphiQL and introspection on. production (the default): both off.
    environment: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_ENV", "production"))
    # Origins whose pages may open GraphQL websockets, comma-separated (same-origin is always allowed).
    ws_origins: tuple[str, ...] = field(default_factory=lambda: tuple(
        o.strip() for o in os.environ.get("PIPEWRIGHT_WS_ORIGINS", "").split(",") if o.strip()))
    max_body_bytes: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_BODY_BYTES", 1_000_000))
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: IPs or CIDRs, comma-separated.
    # None by default: the peer's address is the client's.
    trusted_proxies: tuple[str, ...] = field(default_factory=lambda: tuple(
        p.strip() for p in os.environ.get("PIPEWRIGHT_TRUSTED_PROXIES", "").split(",") if p.strip()))
    public_url: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_PUBLIC_URL", ""))  # for links
    event_retention_h: int = field(default_factory=lambda: _int("PIPEWRIGHT_EVENT_RETENTION_H", 168))
    max_subscriptions: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_SUBSCRIPTIONS", 20))
    # Open GraphQL websockets per user and per API token, counted in each web process.
    max_sockets_per_user: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_SOCKETS_PER_USER", 10))
    max_sockets_per_token: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_SOCKETS_PER_TOKEN", 5))

    # Customer channels. No SMTP URL / SMS gateway: messages go to the built-in capture mailbox (shown in the
    # admin), never silently dropped. smtp://user:pass@host:587 (STARTTLS when offered; ?starttls=require to
    # insist), smtps://host:465 (TLS from the start).
    smtp_url: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_SMTP_URL", ""))
    mail_from: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_MAIL_FROM", "pipewright@localhost"))
    # DKIM signing when a private key (PEM file) is configured; the domain defaults to the From address's.
    dkim_key_file: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DKIM_KEY_FILE", ""))
    dkim_selector: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DKIM_SELECTOR", "pipewright"))
    dkim_domain: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DKIM_DOMAIN", ""))
    # A generic HTTP/JSON SMS gateway: POST {to, from, text, reference} with this Authorization header.
    sms_url: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_SMS_URL", ""))
    sms_auth: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_SMS_AUTH", ""))
    sms_from: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_SMS_FROM", "pipewright"))
    # The inbound SMTP receiver (`pipewright mailin`, and inside `pipewright serve` when set): host:port.
    mailin: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_MAILIN", ""))
    mailin_max_bytes: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAILIN_MAX_BYTES", 10_000_000))
    # Delivery: one attempt may take send_timeout_s (its lease is renewed while it works), then it is retried
    # with backoff from message_retry_base_ms, up to message_max_attempts.
    send_timeout_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_SEND_TIMEOUT_S", 30))
    message_max_attempts: int = field(default_factory=lambda: _int("PIPEWRIGHT_MESSAGE_MAX_ATTEMPTS", 8))
    message_retry_base_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_MESSAGE_RETRY_BASE_MS", 5000))
    message_lease_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_MESSAGE_LEASE_S", 60))
    # Phone numbers are stored in E.164; one written without a country code (030 5550 0100: a client's, a
    # webhook's, an SMS recipient's) is read as a number of this region (ISO 3166 code).
    default_region: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DEFAULT_REGION", "DE").upper())
    # The admin's language for users who chose none, and before login: en or de. Amounts without a currency
    # of their own (a condition's "amount is at least 2800") are in the instance's currency.
    default_locale: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DEFAULT_LOCALE", "en").lower())
    default_currency: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_DEFAULT_CURRENCY", "EUR").upper())
    # Files (document PDFs, stamps, signatures): a local directory; empty: `files` next to the SQLite database
    # (or in the working directory on PostgreSQL). Every web and worker process must see the same directory.
    files_dir: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_FILES_DIR", ""))
    # The company's own details, for document templates ({{own.name}}, {{own.address}}, …).
    company_name: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_COMPANY_NAME", ""))
    company_address: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_COMPANY_ADDRESS", ""))
    company_email: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_COMPANY_EMAIL", ""))
    company_phone: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_COMPANY_PHONE", ""))
    company_tax_id: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_COMPANY_TAX_ID", ""))
    # The PDF step of a document: attempts with backoff, like a message's delivery.
    pdf_max_attempts: int = field(default_factory=lambda: _int("PIPEWRIGHT_PDF_MAX_ATTEMPTS", 3))
    pdf_lease_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_PDF_LEASE_S", 120))

    # Leases (issue 13). A running run renews its lease_s lease every third of it while its action works. A run
    # sent to the broker but not yet started counts as lost (and is sent again) after queued_lease_s plus
    # queued_lease_per_run_ms for each run queued ahead of it: the backlog is drained before anything is re-sent.
    queued_lease_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_QUEUED_LEASE_S", 30))
    queued_lease_per_run_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_QUEUED_LEASE_PER_RUN_MS", 100))

    # Timeouts on every wait (README: "Timeouts"). PostgreSQL's are set per connection as it opens, so asyncpg's
    # reset on release keeps them. 0 turns one off.
    pg_lock_timeout_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_LOCK_TIMEOUT_MS", 5000))
    pg_statement_timeout_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_STATEMENT_TIMEOUT_MS", 30_000))
    pg_idle_in_transaction_timeout_ms: int = field(
        default_factory=lambda: _int("PIPEWRIGHT_PG_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60_000))
    pg_connect_timeout_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_CONNECT_TIMEOUT_S", 10))
    # asyncpg's own bound on one statement: above the server's statement timeout, for a server that is cut off.
    pg_command_timeout_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_COMMAND_TIMEOUT_S", 40))
    # The server notices a client that vanished (host cut off, frozen) after idle + interval * count seconds.
    pg_keepalives_idle_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_KEEPALIVES_IDLE_S", 30))
    pg_keepalives_interval_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_KEEPALIVES_INTERVAL_S", 10))
    pg_keepalives_count: int = field(default_factory=lambda: _int("PIPEWRIGHT_PG_KEEPALIVES_COUNT", 3))
    db_pool_min_connections: int = field(default_factory=lambda: _int("PIPEWRIGHT_DB_POOL_MIN_CONNECTIONS", 1))
    # A running run holds a connection for its transaction and its lease heartbeat needs a second one, so the
    # default is two per worker thread plus two (a smaller pool starves the heartbeats: runs get taken over).
    db_pool_max_connections: int = field(default_factory=lambda: _int(
        "PIPEWRIGHT_DB_POOL_MAX_CONNECTIONS", 2 * _int("PIPEWRIGHT_WORKER_THREADS", 8) + 2))
    sqlite_busy_timeout_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_SQLITE_BUSY_TIMEOUT_MS", 5000))
    redis_socket_timeout_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_REDIS_SOCKET_TIMEOUT_MS", 5000))
    redis_connect_timeout_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_REDIS_CONNECT_TIMEOUT_MS", 3000))
    redis_health_check_interval_s: int = field(
        default_factory=lambda: _int("PIPEWRIGHT_REDIS_HEALTH_CHECK_INTERVAL_S", 30))
    # How long a request whose change has committed waits for the broker to take its due runs and messages;
    # what is not sent by then, the scheduler sends once their queued lease runs out.
    broker_send_wait_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_BROKER_SEND_WAIT_MS", 2000))
    # An idempotency key answers its first result for this long.
    idempotency_key_retention_h: int = field(default_factory=lambda: _int("PIPEWRIGHT_IDEMPOTENCY_KEY_RETENTION_H", 24))
    # Admission control (server/http.py): requests served at once by one web process (0: no limit), how long
    # one more waits for a turn before it gets 503 with Retry-After, and (embedded) how many rule runs may wait
    # for the in-process worker before creates and moves get 503 instead of queueing behind them.
    max_inflight_requests: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_INFLIGHT_REQUESTS", 32))
    admission_wait_ms: int = field(default_factory=lambda: _int("PIPEWRIGHT_ADMISSION_WAIT_MS", 1000))
    max_run_backlog: int = field(default_factory=lambda: _int("PIPEWRIGHT_MAX_RUN_BACKLOG", 1000))
    retry_after_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_RETRY_AFTER_S", 1))
    # SQLite's page cache per connection, in KiB (PRAGMA cache_size=-N). The claim touches a few index pages;
    # 16 MiB keeps the embedded server under 100 MB with 100 k pending runs (64 MiB: 146 MiB, bench.pending_runs)
    # and the operating system's file cache holds the rest.
    sqlite_cache_kib: int = field(default_factory=lambda: _int("PIPEWRIGHT_SQLITE_CACHE_KIB", 16384))
    # `serve` applies new migrations in a child process and waits this long for it (a migration may rewrite a
    # big table) before it stops it and refuses to start.
    migrate_timeout_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_MIGRATE_TIMEOUT_S", 3600))
    # On stop, requests still open (the admin's live timeline streams never end on their own) get this long to
    # finish before the server cancels them and shuts down.
    shutdown_grace_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_SHUTDOWN_GRACE_S", 5))
    # Operations (issue 16): every worker process and scheduler writes a heartbeat every heartbeat_s. A run due
    # more than overdue_after_s ago and not started is overdue; /health fails when overdue runs exist and no
    # scheduler (or no worker) beat came within stall_after_s. A waiting run is "waiting long" after
    # waiting_long_s. /metrics answers figures at most metrics_cache_s old; a scraper without an API token
    # sends PIPEWRIGHT_METRICS_TOKEN as its bearer token (empty: API tokens of admins only).
    heartbeat_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_HEARTBEAT_S", 5))
    stall_after_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_STALL_AFTER_S", 30))
    overdue_after_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_OVERDUE_AFTER_S", 60))
    waiting_long_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_WAITING_LONG_S", 7 * 24 * 3600))
    metrics_cache_s: int = field(default_factory=lambda: _int("PIPEWRIGHT_METRICS_CACHE_S", 5))
    metrics_token: str = field(default_factory=lambda: os.environ.get("PIPEWRIGHT_METRICS_TOKEN", ""))

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://", "asyncpg://"))

    @property
    def files_path(self) -> str:
        if self.files_dir:
            return self.files_dir
        if self.database_url.startswith("sqlite://"):
            database = self.database_url.removeprefix("sqlite://").split("?")[0]
            if database and database != ":memory:":
                return os.path.join(os.path.dirname(os.path.abspath(database)), "files")
        return os.path.abspath("files")

    @property
    def redis_options(self) -> dict[str, float]:
        """Every Redis client's timeouts (redis-py's names). No retries: a command that times out fails in
        socket_timeout, and what it would have sent, the scheduler sends (runs and messages are rows)."""
        return {"socket_timeout": self.redis_socket_timeout_ms / 1000,
                "socket_connect_timeout": self.redis_connect_timeout_ms / 1000,
                "health_check_interval": self.redis_health_check_interval_s}

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url


_settings: Settings | None = None


def settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def reload() -> Settings:
    global _settings
    _settings = Settings()
    return _settings
