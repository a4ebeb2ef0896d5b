"""Making a document's PDF: a durable step beside the run, like a message's delivery.

`pending` (pdf_due_at: when the next attempt may start) → `rendering` (one attempt holds the lease) → `ready` |
`pending` again (the file store failed, with backoff) | `failed` (WeasyPrint refused the HTML, or its system
libraries are missing: the same input fails the same way, so it is not retried). A run that waits for the PDF
("wait for PDF") is released when it is ready and failed with WeasyPrint's message when it is not.

WeasyPrint runs in a thread (it is CPU-bound and synchronous) with a URL fetcher that loads only the template's
own stamp and signature from the file store: nothing from the network or the file system.
"""

import asyncio
import logging
import time
from datetime import timedelta
from functools import lru_cache
from typing import Any

from server import clock, files
from server.config import settings
from server.db import transaction
from server.kinds import RunStatus
from server.models import Document, DocumentTemplate, RuleRun
from server.rules import engine
from server.rules.documents import ASSET_SCHEME

log = logging.getLogger(__name__)

QUEUED_LEASE_S = 30  # how long a claimed document may wait for a worker before the scheduler sends it again
RETRY_BASE_MS = 2000
MISSING_LIBRARIES = ("WeasyPrint cannot run here: its system libraries (Pango) are missing ({detail}). Install "
                     "libpango-1.0-0 and libpangoft2-1.0-0 (Debian/Ubuntu) and a font such as fonts-dejavu-core; "
                     "the document's HTML is kept and its public link works.")


class PdfUnavailable(Exception):
    """WeasyPrint's system libraries are missing: no PDF can be made on this machine."""


class PdfRefused(Exception):
    """WeasyPrint could not make a PDF of this HTML (its message)."""


@lru_cache(maxsize=1)
def _weasyprint() -> Any:
    try:
        import weasyprint  # type: ignore[import-untyped]  # ships no types; used through Any here
    except OSError as exc:  # cffi could not load libpango / libgobject
        raise PdfUnavailable(MISSING_LIBRARIES.format(detail=exc)) from exc
    return weasyprint


def unavailable_reason() -> str | None:
    """Why no PDF can be made here (for the admin and the run), or None when WeasyPrint works."""
    try:
        _weasyprint()
    except PdfUnavailable as exc:
        return str(exc)
    return None


def _fetcher(assets: dict[str, bytes]) -> Any:
    weasyprint = _weasyprint()

    class OwnAssets(weasyprint.urls.URLFetcher):  # type: ignore[misc, name-defined]  # an untyped library
        """Only `asset:stamp` and `asset:signature`, from bytes read beforehand; every other URL is refused."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            name = url.removeprefix(ASSET_SCHEME) if url.startswith(ASSET_SCHEME) else None
            if name is None or name not in assets:
                raise ValueError(f"documents load only their own stamp and signature, not {url[:100]}")
            return weasyprint.urls.URLFetcherResponse(url, body=assets[name], headers={"Content-Type": _image_type(assets[name])})

    return OwnAssets()


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.lstrip().startswith((b"<svg", b"<?xml")):
        return "image/svg+xml"
    return "application/octet-stream"


def render_pdf(html: str, assets: dict[str, bytes] | None = None) -> bytes:
    """The PDF of a document's HTML (blocking: call it in a thread). PdfRefused with WeasyPrint's message."""
    weasyprint = _weasyprint()
    try:
        pdf: bytes = weasyprint.HTML(string=html, base_url=ASSET_SCHEME, url_fetcher=_fetcher(assets or {})).write_pdf()
    except (MemoryError, RecursionError) as exc:
        raise PdfRefused(f"WeasyPrint: {type(exc).__name__}") from exc
    except Exception as exc:
        raise PdfRefused(f"WeasyPrint could not make the PDF: {type(exc).__name__}: {exc}") from exc
    return pdf


def pdf_key(document: Document) -> str:
    return f"documents/{document.id}/{''.join(c if c.isalnum() or c in '-_.' else '_' for c in document.number)}.pdf"


# ---------------------------------------------------------------- the durable step


async def claim_due(*, limit: int = 50, ids: list[int] | None = None) -> list[int]:
    """Pending documents whose time has come (of `ids`, when given), pushed back by QUEUED_LEASE_S."""
    now = clock.utcnow()
    query = Document.filter(pdf_status="pending", pdf_due_at__lte=now)
    if ids is not None:
        query, limit = query.filter(id__in=ids), len(ids)
    async with transaction():
        rows = await query.order_by("pdf_due_at", "id").limit(limit).select_for_update(skip_locked=True).only("id")
        claimed = [row.id for row in rows]
        if claimed:
            await Document.filter(id__in=claimed, pdf_status="pending").update(
                pdf_due_at=now + timedelta(seconds=QUEUED_LEASE_S))
    return claimed


async def give_back(document_ids: list[int]) -> None:
    """Claimed PDFs the broker did not take: due now again, so the next poll sends them."""
    await Document.filter(id__in=document_ids, pdf_status="pending").update(pdf_due_at=clock.utcnow())


async def recover_expired(*, limit: int = 50, orphaned: bool = False) -> list[int]:
    """Documents whose rendering attempt lost its worker: pending again (now), or failed after the last attempt."""
    now = clock.utcnow()
    recovered: list[int] = []
    async with transaction():
        lost = await (Document.filter(pdf_status="rendering", **({} if orphaned else {"pdf_lease_until__lt": now}))
                      .order_by("pdf_lease_until").limit(limit).select_for_update(skip_locked=True))
        for document in lost:
            why = f"attempt {document.pdf_attempts} lost its worker"
            if document.pdf_attempts >= settings().pdf_max_attempts:
                await _fail(document, f"{why}; gave up after {document.pdf_attempts} attempts")
                continue
            taken = await Document.filter(id=document.id, pdf_status="rendering",
                                          pdf_attempts=document.pdf_attempts).update(
                pdf_status="pending", pdf_due_at=now, pdf_lease_until=None, pdf_error=why)
            if taken:
                recovered.append(document.id)
    return recovered


async def make(document_id: int) -> str | None:
    """One attempt at a pending document's PDF (what the worker actor calls). None if it is not ours."""
    document = await _start(document_id)
    if document is None:
        return None
    try:
        assets = await _assets(document)
        started = time.perf_counter()
        pdf = await asyncio.to_thread(render_pdf, document.html, assets)
        elapsed_ms = round((time.perf_counter() - started) * 1000)
    except (PdfUnavailable, PdfRefused) as exc:
        return await _record_failure(document, str(exc))
    except Exception as exc:  # the file store (a stamp's read): retried
        log.exception("making the PDF of document %s raised", document_id)
        return await _retry_or_fail(document, f"{type(exc).__name__}: {exc}")
    key = pdf_key(document)
    try:
        await files.store().put(key, pdf)
    except OSError as exc:
        return await _retry_or_fail(document, f"the file store refused the PDF: {exc}")
    async with transaction():
        taken = await Document.filter(id=document.id, pdf_status="rendering", pdf_attempts=document.pdf_attempts).update(
            pdf_status="ready", pdf_key=key, pdf_error=None, pdf_lease_until=None, pdf_ms=elapsed_ms)
        if not taken:
            return None
        for run in await _waiting_runs(document):
            await engine.release_waiting(run, ended_by="the PDF being ready")
    return "ready"


async def _start(document_id: int) -> Document | None:
    document = await Document.get_or_none(id=document_id)
    if document is None or document.pdf_status != "pending":
        return None
    attempt = document.pdf_attempts + 1
    lease_until = clock.utcnow() + timedelta(seconds=settings().pdf_lease_s)
    taken = await Document.filter(id=document_id, pdf_status="pending", pdf_attempts=document.pdf_attempts).update(
        pdf_status="rendering", pdf_attempts=attempt, pdf_lease_until=lease_until, pdf_due_at=None)
    if not taken:
        return None
    document.pdf_status, document.pdf_attempts = "rendering", attempt
    return document


async def _assets(document: Document) -> dict[str, bytes]:
    template = await DocumentTemplate.get_or_none(id=document.template_id) if document.template_id else None
    store, assets = files.store(), {}
    for name in ("stamp", "signature"):
        key = getattr(template, f"{name}_key", None) if template else None
        if key:
            assets[name] = await store.get(key)
    return assets


async def _record_failure(document: Document, error: str) -> str | None:
    async with transaction():
        taken = await Document.filter(id=document.id, pdf_status="rendering",
                                      pdf_attempts=document.pdf_attempts).exists()
        if not taken:
            return None
        await _fail(document, error)
    return "failed"


async def _fail(document: Document, error: str) -> None:
    await Document.filter(id=document.id).update(pdf_status="failed", pdf_error=error[:4000], pdf_lease_until=None,
                                                 pdf_due_at=None)
    for run in await _waiting_runs(document):
        await engine.fail_waiting(run, error=f"document {document.number}: {error}")


async def _retry_or_fail(document: Document, error: str) -> str | None:
    if document.pdf_attempts >= settings().pdf_max_attempts:
        return await _record_failure(document, f"{error} (gave up after {document.pdf_attempts} attempts)")
    delay_ms = RETRY_BASE_MS * 2 ** (document.pdf_attempts - 1)
    taken = await Document.filter(id=document.id, pdf_status="rendering", pdf_attempts=document.pdf_attempts).update(
        pdf_status="pending", pdf_error=error[:4000], pdf_lease_until=None,
        pdf_due_at=clock.utcnow() + timedelta(milliseconds=delay_ms))
    return "pending" if taken else None


async def _waiting_runs(document: Document) -> list[RuleRun]:
    if document.rule_run_id is None:
        return []
    return await RuleRun.filter(id=document.rule_run_id, status=RunStatus.waiting)
