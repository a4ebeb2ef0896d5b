"""The app under a real uvicorn on a free port, in the test's loop, with the `db` fixture's worker."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from server.app import create_app
from server.live import hub
from tests.support.servers import free_port


@asynccontextmanager
async def running_app() -> AsyncIterator[str]:
    """Yields "127.0.0.1:<port>". The database and worker come from the `db` fixture; the live hub starts here."""
    port = free_port()
    config = uvicorn.Config(create_app(runtime=False), host="127.0.0.1", port=port, lifespan="off",
                            log_level="warning", ws="websockets-sansio", proxy_headers=False)  # as `pipewright serve`
    server = uvicorn.Server(config)
    await hub.start()
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await hub.stop()
