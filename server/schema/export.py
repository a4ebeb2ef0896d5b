"""Write the GraphQL schema as SDL: `python -m server.schema.export [schema.graphql]`.

`schema.graphql` at the repository root is the published contract; a test fails when it drifts.
"""

import sys
from pathlib import Path

from server.schema.schema import schema

DEFAULT = Path(__file__).resolve().parents[2] / "schema.graphql"


def sdl() -> str:
    return schema.as_str() + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else DEFAULT
    target.write_text(sdl())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
