"""GraphiQL for the development server, from our own files (server/schema/graphiql/): no CDN, no inline script.

The page only references files under ASSETS_PATH; `server/http.py` gives it a CSP of 'self'.
"""

from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

GRAPHIQL_VERSION = "3.8.3"  # with react and react-dom 18.2.0; see server/schema/graphiql/README.md
ASSETS = Path(__file__).resolve().parent / "graphiql"
ASSETS_PATH = "/graphql/ide"

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GraphiQL · pipewright</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASSETS_PATH}/graphiql.min.css?v={GRAPHIQL_VERSION}">
<link rel="stylesheet" href="{ASSETS_PATH}/page.css?v={GRAPHIQL_VERSION}">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{ASSETS_PATH}/react.production.min.js?v={GRAPHIQL_VERSION}"></script>
<script src="{ASSETS_PATH}/react-dom.production.min.js?v={GRAPHIQL_VERSION}"></script>
<script src="{ASSETS_PATH}/graphiql.min.js?v={GRAPHIQL_VERSION}"></script>
<script src="{ASSETS_PATH}/start.js?v={GRAPHIQL_VERSION}"></script>
</body>
</html>
"""


def page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"cache-control": "no-cache"})


def assets() -> StaticFiles:
    """The IDE's files, mounted at ASSETS_PATH (development only, like the page)."""
    return StaticFiles(directory=str(ASSETS))
