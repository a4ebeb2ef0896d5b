"""Document PDFs made by one worker process: render time per document and documents per minute.

    .venv/bin/python -m bench.documents --documents 100

A fresh SQLite file and the EmbeddedWorker in this process (one process: WeasyPrint holds the GIL while it lays
out, so its threads share one core). An Offer template (a heading, a table, a paragraph of the deal's fields);
`--documents` deals each get a document through the documents service at once, then the worker makes the PDFs.

Render time = the WeasyPrint call of one document (`document.pdf_ms`, measured around the thread); throughput =
documents / (the last PDF ready - the first document written). The check: every document ends ready, with a
distinct number. Exit status 1 when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

from bench.common import percentile

BODY = """<style>body { font-family: sans-serif; } td { padding: 4px 10px; border-bottom: 1px solid #ccc; }</style>
<h1>Offer {{document.number}}</h1><p>{{document.date}}</p><h2>{{deal.title}}</h2>
<table>{% for i in range(12) %}<tr><td>Item {{i}}</td><td>{{deal.title}}</td><td>{{deal.amount|default('')}}</td></tr>{% endfor %}</table>
<p>Your contact: {{deal.responsible.name|default('')}}</p>"""


async def main(args: argparse.Namespace) -> int:
    workdir = tempfile.mkdtemp(prefix="pw-bench-documents-")
    os.environ.update({"PIPEWRIGHT_DATABASE_URL": f"sqlite://{workdir}/bench.db", "PIPEWRIGHT_POLL_MS": "50",
                       "PIPEWRIGHT_FILES_DIR": f"{workdir}/files"})
    from server import config, database
    from server.actor import SYSTEM
    from server.models import Document, Pipeline, Stage
    from server.services import documents, elements
    from server.workers.embedded import EmbeddedWorker

    config.reload()
    await database.migrate()
    await database.connect()
    worker = EmbeddedWorker(threads=args.threads)
    await worker.start()
    try:
        pipeline = await Pipeline.create(name="Sales", entity_type="deal", is_default=True)
        stage = await Stage.create(pipeline=pipeline, code="new", name="New", position=0, semantic="in_progress")
        template = await documents.save_template(documents.TemplateInput(name="Offer", body=BODY, prefix="OF-",
                                                                         counter="continuous", digits=4), actor=SYSTEM)
        deals = [await elements.create_element("deal", {"title": f"Roof {i}", "amount": "1200"}, stage_id=stage.id,
                                               actor=SYSTEM) for i in range(args.documents)]
        started = time.monotonic()
        await asyncio.gather(*(documents.create_document(template.id, "deal", d.id, actor=SYSTEM) for d in deals))
        deadline = time.monotonic() + args.timeout
        while await Document.filter(pdf_status__in=("pending", "rendering")).exists():
            if time.monotonic() > deadline:
                print("timed out waiting for the PDFs", file=sys.stderr)
                return 1
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        rows = await Document.all()
        times = sorted(float(r.pdf_ms or 0) for r in rows)
        ok = all(r.pdf_status == "ready" for r in rows) and len({r.number for r in rows}) == len(rows) == args.documents
        print(f"documents: {len(rows)}, worker threads: {args.threads}, one process, load {os.getloadavg()[0]:.2f}")
        print(f"PDF render time per document: median {percentile(times, 50):.0f} ms, p99 {percentile(times, 99):.0f} ms")
        print(f"throughput: {len(rows) / elapsed * 60:.0f} documents/min ({elapsed:.1f} s for all)")
        print("check:", "ok" if ok else "FAILED (a PDF not ready or a number repeated)")
        return 0 if ok else 1
    finally:
        await worker.stop()
        await database.disconnect()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.documents", description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4, help="worker threads of the one process")
    parser.add_argument("--timeout", type=float, default=600)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
