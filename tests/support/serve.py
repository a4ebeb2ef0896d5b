"""`pipewright serve` as a child process, and a small GraphQL client for it."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import ROOT


def serve(db_url: str, port: int, log: Path, *, broker_url: str | None = None) -> subprocess.Popen:
    """`pipewright serve` as a child process: embedded worker, or production with `broker_url`."""
    env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": db_url, "PIPEWRIGHT_POLL_MS": "100"}
    env.pop("PIPEWRIGHT_BROKER_URL", None)
    if broker_url:
        env["PIPEWRIGHT_BROKER_URL"] = broker_url
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--no-demo", "--port", str(port)],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )


def cli_token(db_url: str, email: str = "admin@example.com", role: str = "admin") -> str:
    """`pipewright token --create ROLE`: what an operator runs to get an API token."""
    env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": db_url}
    done = subprocess.run([sys.executable, "-m", "server.cli", "token", "--email", email, "--create", role],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


async def graphql(port: int, query: str, variables: dict | None = None, *, token: str) -> dict:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


async def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60  # a fresh database migrates 15 steps and loads the demo first
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not come up")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
