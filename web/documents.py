"""Documents in the admin: the template list, a template's form with a live preview against a chosen deal (htmx),
an element's documents with their PDFs and revoking a link. The documents service decides who may do what."""

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from server.errors import ValidationFailed
from server.i18n import gettext as _
from server.services import documents, elements
from web.guard import page
from web.templating import error_map, redirect, render


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _image(form: Any, name: str) -> bytes | None:
    upload = form.get(name)
    if upload is None or isinstance(upload, str) or not upload.filename:
        return b"" if _text(form, f"remove_{name}") else None
    data: bytes = await upload.read()
    return data


async def _input(form: Any) -> documents.TemplateInput:
    digits = _text(form, "digits")
    return documents.TemplateInput(
        name=_text(form, "name"), entity_type=_text(form, "entity_type") or "deal", body=_text(form, "body"),
        prefix=_text(form, "prefix"), counter=_text(form, "counter") or "continuous",
        digits=int(digits) if digits.isdigit() else 0, stamp=await _image(form, "stamp"),
        signature=await _image(form, "signature"))


async def _form_page(request: Request, template: Any, *, values: dict[str, Any] | None = None,
                     errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.actor
    deals = await elements.list_elements("deal", actor=actor, first=50)
    return render(request, "document_template.html", {
        "template": template, "values": values or (vars(template) if template else {}), "errors": errors or {},
        "deals": deals, "counters": documents.COUNTERS, "pdf_unavailable": documents.pdf_unavailable(),
    }, status_code=status_code)


@page(admin=True)
async def template_list(request: Request) -> Response:
    return render(request, "document_templates.html", {
        "templates": await documents.list_templates(actor=request.state.actor),
        "pdf_unavailable": documents.pdf_unavailable(), "done": request.query_params.get("done")})


@page(admin=True)
async def template_new(request: Request) -> Response:
    if request.method == "GET":
        return await _form_page(request, None, values={"entity_type": "deal", "counter": "yearly", "digits": 3})
    data = await _input(await request.form())
    try:
        template = await documents.save_template(data, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _form_page(request, None, values=vars(data), errors=error_map(exc), status_code=422)
    return redirect(request, f"/admin/documents/templates/{template.id}?done=saved")


@page(admin=True)
async def template_edit(request: Request) -> Response:
    template_id = int(request.path_params["template_id"])
    template = await documents.get_template(template_id, actor=request.state.actor)
    if request.method == "GET":
        return await _form_page(request, template)
    data = await _input(await request.form())
    try:
        await documents.save_template(data, template_id=template_id, actor=request.state.actor)
    except ValidationFailed as exc:
        return await _form_page(request, template, values=vars(data), errors=error_map(exc), status_code=422)
    return redirect(request, f"/admin/documents/templates/{template_id}?done=saved")


@page(admin=True)
async def template_preview(request: Request) -> Response:
    """The fragment the form's preview pane swaps in as the admin types."""
    form = await request.form()
    deal = _text(form, "preview_deal")
    template = _text(form, "template_id")
    html, error = "", None
    if not deal.isdigit():
        error = _("Choose a deal to preview against.")
    else:
        try:
            html = await documents.preview(body=_text(form, "body"), entity_type="deal", element_id=int(deal),
                                           template_id=int(template) if template.isdigit() else None,
                                           actor=request.state.actor)
        except ValidationFailed as exc:
            error = "; ".join(e.message for e in exc.errors)
    return render(request, "_document_preview.html", {"html": html, "error": error})


@page()
async def document_pdf(request: Request) -> Response:
    document = await documents.get_document(int(request.path_params["document_id"]), actor=request.state.actor)
    data = await documents.pdf_of(document)
    if data is None:
        return PlainTextResponse(document.pdf_error or _("The PDF is still being made."), status_code=404)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{document.number}.pdf"', "Cache-Control": "private, no-store"})


@page()
async def document_revoke(request: Request) -> Response:
    document = await documents.revoke(int(request.path_params["document_id"]), actor=request.state.actor)
    return redirect(request, f"/admin/{document.element_type}s/{document.element_id}#documents")


routes = [
    Route("/documents/templates", template_list, methods=["GET"]),
    Route("/documents/templates/new", template_new, methods=["GET", "POST"]),
    Route("/documents/templates/preview", template_preview, methods=["POST"]),
    Route("/documents/templates/{template_id:int}", template_edit, methods=["GET", "POST"]),
    Route("/documents/{document_id:int}.pdf", document_pdf, methods=["GET"]),
    Route("/documents/{document_id:int}/revoke", document_revoke, methods=["POST"]),
]
