"""Operations figures: the run queue (due, overdue, by status), throughput, failures per rule, the outbox and PDF
backlogs, the workers' and schedulers' heartbeats, and the verdict /health gives on them.

Every figure comes from the database, so it is the same whichever process answers. Each query reads an index:
the partial claim indexes of 0012 for what is due or leased, (status, due_at, id) of 0017 for queued runs and
(status, finished_at) of 0014 for what finished: none scans rule_run (tests/test_metrics.py checks the plans).
The run counts stop at COUNTED_UP_TO (`count(*)` of a subquery with a limit), so a million scheduled runs cost each
count 100,000 index entries at most; a figure over the cap is shown as "over 100,000".
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.functions import Count, Max
from tortoise.queryset import QuerySet

from server import clock
from server.config import settings
from server.kinds import RunStatus
from server.models import Document, Message, RuleRun, WorkerBeat
from server.services.access import Acting, require_admin

ACTIVE = (RunStatus.scheduled, RunStatus.queued, RunStatus.running, RunStatus.waiting)
FINISHED = (RunStatus.succeeded, RunStatus.skipped, RunStatus.failed, RunStatus.cancelled, RunStatus.stopped)
CLAIMABLE = (RunStatus.scheduled, RunStatus.waiting)  # what the scheduler claims when due (index rule_run_due)
LEASED = (RunStatus.queued, RunStatus.running)  # index rule_run_leased
WORKER, SCHEDULER = "worker", "scheduler"  # the roles of server/workers/heartbeat.py
RATE_WINDOW_S = 60  # runs per second: the runs finished in the last minute
LISTED = 20  # rows of each list the operations page shows
COUNTED_UP_TO = 100_000  # the run counts stop here (a figure above it reads "over 100,000"): each reads at most
#                          this many index entries, so a million scheduled runs cost the page no more than 100,000


@dataclass(frozen=True)
class RuleFailures:
    """A rule's failed runs in a window, with its latest failure (its error and element)."""

    rule_id: int
    title: str
    failures: int
    last_failed_at: datetime
    last_error: str
    last_run_id: int
    element_type: str
    element_id: int


@dataclass(frozen=True)
class Beat:
    role: str
    name: str
    host: str
    pid: int
    beat_at: datetime
    age_s: float


@dataclass(frozen=True)
class Figures:
    measured_at: datetime
    overdue_after_s: int
    active: dict[str, int]  # unfinished runs by status, each counted up to counted_up_to + 1 (more: over it)
    finished_last_hour: dict[str, int]  # by final status
    runs_per_second: float  # finished in the last minute, per second
    due: int  # due now and not started (scheduled or waiting past their time, or queued for a worker), capped alike
    overdue: int  # of those, due more than overdue_after_s ago, capped alike
    oldest_pending_s: float  # how long the oldest of them has been due (0: none)
    scheduler_lag_s: float  # how long the oldest due run has waited for the scheduler to claim it (0: none)
    failures_last_hour: list[RuleFailures]
    outbox: dict[str, int]  # messages queued, sending
    pdf_queue: dict[str, int]  # documents whose PDF is pending, rendering
    beats: list[Beat] = field(default_factory=list)
    counted_up_to: int = COUNTED_UP_TO

    def over(self, n: int) -> bool:
        """Whether a run count stopped at the cap: there are more than counted_up_to."""
        return n > self.counted_up_to

    @property
    def capped(self) -> bool:
        """Whether any run count stopped at the cap."""
        return any(self.over(n) for n in (self.due, self.overdue, *self.active.values()))


@dataclass(frozen=True)
class StuckRun:
    run_id: int
    title: str
    status: str
    element_type: str
    element_id: int
    since: datetime  # due since, lease expired at, or waiting since
    why: str  # in words


@dataclass(frozen=True)
class Health:
    overdue: bool
    scheduler_beat_s: float | None  # age of the newest scheduler beat (None: none ever)
    worker_beat_s: float | None
    stall_after_s: int

    @property
    def scheduler_stalled(self) -> bool:
        return self.overdue and (self.scheduler_beat_s is None or self.scheduler_beat_s > self.stall_after_s)

    @property
    def workers_stalled(self) -> bool:
        return self.overdue and (self.worker_beat_s is None or self.worker_beat_s > self.stall_after_s)

    @property
    def ok(self) -> bool:
        return not (self.scheduler_stalled or self.workers_stalled)


def _age_s(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


async def _by_status(query: QuerySet[RuleRun]) -> dict[str, int]:
    rows = await query.annotate(n=Count("id")).group_by("status").values_list("status", "n")
    return {str(status): int(n) for status, n in rows}


async def _counted(query: QuerySet[RuleRun]) -> int:
    """How many runs `query` matches, up to COUNTED_UP_TO + 1: `SELECT count(*) FROM (... LIMIT cap + 1)`, which
    stops reading the index there (Tortoise's .count() ignores a limit, so the statement is put together here)."""
    inner = query.limit(COUNTED_UP_TO + 1).values("id")
    inner._choose_db_if_not_chosen()
    inner._make_query()
    inner.query._orderbys = []  # the model's default ordering (position, id) would sort every matching run first
    sql, params = inner.query.get_parameterized_sql()
    _, rows = await inner._db.execute_query(f"SELECT COUNT(*) AS n FROM ({sql}) AS counted", params)
    return int(dict(rows[0])["n"])


async def _active() -> dict[str, int]:
    """Unfinished runs by status, one status at a time, each counted up to the cap."""
    return {status.value: await _counted(RuleRun.filter(status=status)) for status in ACTIVE}


async def _oldest_due(statuses: tuple[RunStatus, ...], before: datetime) -> datetime | None:
    """The earliest due time among `statuses`: one status at a time, so each is the first entry of the
    (status, due_at) index instead of a sort of every due run."""
    found = []
    for status in statuses:
        first = await RuleRun.filter(status=status, due_at__lte=before).order_by("due_at").first().only("due_at")
        if first is not None and first.due_at is not None:
            found.append(first.due_at)
    return min(found, default=None)


async def _due_count(before: datetime) -> int:
    """Due and not started, up to the cap (COUNTED_UP_TO + 1 means more)."""
    claimable = await _counted(RuleRun.filter(status__in=CLAIMABLE, due_at__lte=before))
    if claimable > COUNTED_UP_TO:
        return claimable
    return min(COUNTED_UP_TO + 1, claimable + await _counted(RuleRun.filter(status=RunStatus.queued, due_at__lte=before)))


async def overdue_exists(now: datetime | None = None) -> bool:
    """Whether any run has been due, and not started, for more than overdue_after_s (cheap: one index probe each)."""
    before = (now or clock.utcnow()) - timedelta(seconds=settings().overdue_after_s)
    return (await RuleRun.filter(status__in=CLAIMABLE, due_at__lte=before).exists()
            or await RuleRun.filter(status=RunStatus.queued, due_at__lte=before).exists())


async def failures_by_rule(*, within: timedelta, limit: int = LISTED, actor: Acting) -> list[RuleFailures]:
    """The rules with failed runs finished in the last `within`, most failures first."""
    require_admin(actor)
    since = clock.utcnow() - within
    rows = await (
        RuleRun.filter(status=RunStatus.failed, finished_at__gte=since)
        .annotate(n=Count("id"), last=Max("finished_at")).group_by("rule_id")
        .order_by("-n").limit(limit).values_list("rule_id", "n", "last")
    )
    found = []
    for rule_id, n, _ in rows:
        latest = await (RuleRun.filter(status=RunStatus.failed, finished_at__gte=since, rule_id=rule_id)
                        .order_by("-finished_at").first())
        if latest is None or latest.finished_at is None:  # re-run meanwhile
            continue
        found.append(RuleFailures(
            rule_id=int(rule_id), title=latest.title, failures=int(n), last_failed_at=latest.finished_at,
            last_error=latest.error or "", last_run_id=latest.id, element_type=latest.element_type,
            element_id=latest.element_id))
    return found


async def beats(*, actor: Acting, now: datetime | None = None) -> list[Beat]:
    """Every process that has beaten in the last day, newest first."""
    require_admin(actor)
    now = now or clock.utcnow()
    return [Beat(role=b.role, name=b.name, host=b.host, pid=b.pid, beat_at=b.beat_at, age_s=_age_s(now, b.beat_at))
            for b in await WorkerBeat.all().order_by("-beat_at").limit(200)]


async def figures(*, actor: Acting) -> Figures:
    require_admin(actor)
    config = settings()
    now = clock.utcnow()
    overdue_before = now - timedelta(seconds=config.overdue_after_s)
    oldest_claimable = await _oldest_due(CLAIMABLE, now)
    oldest_queued = await _oldest_due((RunStatus.queued,), now)
    oldest = min((t for t in (oldest_claimable, oldest_queued) if t is not None), default=None)
    last_minute = await RuleRun.filter(status__in=FINISHED, finished_at__gte=now - timedelta(seconds=RATE_WINDOW_S)).count()
    return Figures(
        measured_at=now,
        overdue_after_s=config.overdue_after_s,
        active=await _active(),
        finished_last_hour={status.value: 0 for status in FINISHED} | await _by_status(
            RuleRun.filter(status__in=FINISHED, finished_at__gte=now - timedelta(hours=1))),
        runs_per_second=last_minute / RATE_WINDOW_S,
        due=await _due_count(now),
        overdue=await _due_count(overdue_before),
        oldest_pending_s=_age_s(now, oldest),
        scheduler_lag_s=_age_s(now, oldest_claimable),
        failures_last_hour=await failures_by_rule(within=timedelta(hours=1), limit=100, actor=actor),
        outbox={"queued": await Message.filter(status="queued").count(),
                "sending": await Message.filter(status="sending").count()},
        pdf_queue={"pending": await Document.filter(pdf_status="pending").count(),
                   "rendering": await Document.filter(pdf_status="rendering").count()},
        beats=await beats(actor=actor, now=now),
        counted_up_to=COUNTED_UP_TO,
    )


async def stuck_runs(*, actor: Acting, limit: int = LISTED) -> list[StuckRun]:
    """Runs overdue (due and not started), whose lease expired (their worker was lost), or waiting long."""
    require_admin(actor)
    config = settings()
    now = clock.utcnow()
    overdue_before = now - timedelta(seconds=config.overdue_after_s)
    stuck: list[StuckRun] = []
    for run in await RuleRun.filter(status__in=CLAIMABLE, due_at__lte=overdue_before).order_by("due_at").limit(limit):
        assert run.due_at is not None
        waited = "the scheduler has not claimed it" if run.status == RunStatus.scheduled else "its wait timed out, not yet claimed"
        stuck.append(StuckRun(run.id, run.title, run.status, run.element_type, run.element_id, run.due_at,
                              f"overdue: due {_minutes(now - run.due_at)} ago, {waited}"))
    for run in await RuleRun.filter(status=RunStatus.queued, due_at__lte=overdue_before).order_by("due_at").limit(limit):
        assert run.due_at is not None
        stuck.append(StuckRun(run.id, run.title, run.status, run.element_type, run.element_id, run.due_at,
                              f"overdue: due {_minutes(now - run.due_at)} ago, sent to the workers and not started"))
    for run in await RuleRun.filter(status__in=LEASED, lease_until__lt=now).order_by("lease_until").limit(limit):
        assert run.lease_until is not None
        stuck.append(StuckRun(run.id, run.title, run.status, run.element_type, run.element_id, run.lease_until,
                              f"lease expired {_minutes(now - run.lease_until)} ago ({run.status}, attempt "
                              f"{run.attempts}): its worker was lost, the scheduler's sweep sends it again"))
    waiting_before = now - timedelta(seconds=config.waiting_long_s)
    for run in await (RuleRun.filter(status=RunStatus.waiting, waiting_since__lte=waiting_before)
                      .order_by("waiting_since").limit(limit)):
        assert run.waiting_since is not None
        stuck.append(StuckRun(run.id, run.title, run.status, run.element_type, run.element_id, run.waiting_since,
                              f"waiting for {_minutes(now - run.waiting_since)}: {run.reason or 'its lane is blocked'}"))
    unique: dict[int, StuckRun] = {}
    for one in stuck:  # an overdue queued run may also have an expired lease: listed once, for the first reason
        unique.setdefault(one.run_id, one)
    return list(unique.values())


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


async def health(*, actor: Acting) -> Health:
    """Whether the scheduler and the workers are keeping up: stalled when runs are overdue and no process of
    that role has beaten within stall_after_s (a quiet system with old beats is not stalled)."""
    config = settings()
    now = clock.utcnow()

    async def newest(role: str) -> float | None:
        beat = await WorkerBeat.filter(role=role).order_by("-beat_at").first().only("beat_at")
        return _age_s(now, beat.beat_at) if beat is not None else None

    return Health(overdue=await overdue_exists(now), scheduler_beat_s=await newest(SCHEDULER),
                  worker_beat_s=await newest(WORKER), stall_after_s=config.stall_after_s)
