"""Two processes writing one SQLite file: read-then-write transactions wait instead of failing."""

import asyncio
import subprocess
import sys
import textwrap

from tests.support.servers import ROOT

WRITER = textwrap.dedent("""
    import asyncio, sys
    from server import database
    from server.db import transaction
    from server.models import User

    async def main(url, name):
        await database.connect(url)
        try:
            for i in range(40):
                async with transaction():
                    await User.filter(name="counter").first()  # read first: the deferred-BEGIN trap
                    await asyncio.sleep(0.002)
                    await User.create(name=f"{name}-{i}", email=f"{name}-{i}@example.com")
        finally:
            await database.disconnect()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


async def test_two_processes_writing_one_sqlite_file_lose_no_transaction(tmp_path):
    from server import database
    from server.models import User

    url = f"sqlite://{tmp_path / 'shared.db'}"
    await database.migrate(url)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, name], cwd=ROOT, stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    errors = [(await asyncio.to_thread(w.communicate))[1].decode() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors

    await database.connect(url)
    try:
        assert await User.filter(name__startswith="a-").count() == 40
        assert await User.filter(name__startswith="b-").count() == 40
    finally:
        await database.disconnect()
