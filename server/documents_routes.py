"""The public face of documents: GET /d/{token} (the document as a page, with its PDF linked),
/d/{token}.pdf and /d/{token}/stamp|signature. Anonymous: the unguessable token is the permission, a revoked or
unknown one answers the same 404, and nothing on the page runs (a CSP without scripts)."""

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from server.models import Document
from server.services import documents

# The document's own inline styles and its images; no script, no form, no framing, no base.
DOCUMENT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'none'")
PRIVATE = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex, nofollow"}
GONE = "This document link is not valid (it may have been revoked)."


def _not_found() -> Response:
    return PlainTextResponse(GONE, status_code=404, headers={"Cache-Control": "no-store"})


async def _viewed(request: Request, document: Document) -> None:
    await documents.record_view(document, ip=request.client.host if request.client else "",
                                agent=request.headers.get("user-agent", ""))


async def page(request: Request) -> Response:
    document = await documents.public_document(request.path_params["token"])
    if document is None:
        return _not_found()
    await _viewed(request, document)
    token = document.token
    body = document.html.replace("asset:stamp", f"/d/{token}/stamp").replace("asset:signature", f"/d/{token}/signature")
    title = html.escape(f"{document.title} {document.number}".strip())
    pdf_link = (f'<p style="text-align:right"><a href="/d/{token}.pdf">Download the PDF</a></p>'
                if document.pdf_status == "ready" else "")
    return HTMLResponse(f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
                        f'<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
                        f"<body>{pdf_link}{body}</body></html>",
                        headers={**PRIVATE, "Content-Security-Policy": DOCUMENT_CSP})


async def pdf_file(request: Request) -> Response:
    document = await documents.public_document(request.path_params["token"])
    if document is None:
        return _not_found()
    data = await documents.pdf_of(document)
    if data is None:
        why = ("Its PDF is still being made; try again in a moment." if document.pdf_status in ("pending", "rendering")
               else "Its PDF could not be made; the document itself is at this link without .pdf.")
        return PlainTextResponse(why, status_code=404, headers={"Cache-Control": "no-store", "Retry-After": "5"})
    await _viewed(request, document)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in document.number) + ".pdf"
    return Response(data, media_type="application/pdf",
                    headers={**PRIVATE, "Content-Disposition": f'inline; filename="{filename}"'})


async def asset(request: Request) -> Response:
    document = await documents.public_document(request.path_params["token"])
    data = await documents.asset_of(document, request.path_params["asset"]) if document else None
    if data is None:
        return _not_found()
    return Response(data, media_type=documents.image_type(data), headers=PRIVATE)


def routes() -> list[Route]:
    return [
        Route("/d/{token}.pdf", pdf_file, methods=["GET"]),
        Route("/d/{token}/{asset}", asset, methods=["GET"]),
        Route("/d/{token}", page, methods=["GET"]),
    ]
