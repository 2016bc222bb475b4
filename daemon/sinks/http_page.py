"""The live-view HTML page (no external resources: it works on an offline device)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from urllib.parse import quote

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>d2stream live view</title>
<style>
  body {{ margin: 0; background: #111; color: #ddd; font: 14px system-ui, sans-serif; }}
  header {{ padding: 8px 12px; background: #222; display: flex; gap: 16px; }}
  header {{ box-sizing: border-box; height: 34px; }}
  /* Tiles: a grid of cols x rows filling the window below the header; each stream scaled
     to fit its tile, aspect kept. One column on narrow screens. */
  main.tiles {{ box-sizing: border-box; height: calc(100vh - 34px); display: grid; gap: 12px;
    padding: 12px; grid-template-columns: repeat({cols}, minmax(0, 1fr));
    grid-template-rows: repeat({rows}, minmax(0, 1fr)); }}
  .tiles figure {{ margin: 0; background: #000; display: flex; flex-direction: column;
    min-width: 0; min-height: 0; }}
  .tiles figure img {{ display: block; flex: 1 1 0; min-height: 0; width: 100%;
    object-fit: contain; }}
  .tiles figcaption {{ padding: 4px 8px; }}
  @media (max-width: 600px) {{
    main.tiles {{ height: auto; grid-template-columns: 1fr; grid-template-rows: none;
      grid-auto-rows: 75vw; }}
  }}
  #status.ok {{ color: #6d6; }} #status.degraded, #status.starting {{ color: #fb4; }}
</style>
</head>
<body>
<header><strong>d2stream</strong><span id="status">…</span><span id="stats"></span></header>
<main class="tiles">
{figures}
</main>
<script>
async function refresh() {{
  try {{
    const r = await fetch("healthz{query}", {{cache: "no-store"}});
    const h = await r.json();
    const s = document.getElementById("status");
    s.textContent = h.status; s.className = h.status;
    const parts = Object.entries(h.cameras).map(([name, c]) =>
      `${{name}}: ${{c.fps.toFixed(1)}} fps, ${{c.dropped}} dropped`);
    document.getElementById("stats").textContent =
      parts.join(" | ") + ` | worker restarts: ${{h.worker.restarts}}`;
  }} catch (e) {{
    document.getElementById("status").textContent = "unreachable";
  }}
}}
refresh(); setInterval(refresh, 2000);
</script>
</body>
</html>
"""

_FIGURE = """<figure>
  <img src="stream/{url}.mjpg{query}" alt="{name} live stream">
  <figcaption>{name}</figcaption>
</figure>"""


def index_html(cameras: Sequence[str], token_query: str = "") -> str:
    """The page: one live ``<img>`` per camera and a status line refreshed from ``/healthz``.

    ``token_query`` (``token=...``, URL-encoded) is appended to the page's own requests when the
    page was opened with it (a browser sends basic-auth credentials by itself)."""
    query = html.escape(f"?{token_query}") if token_query else ""
    figures = "\n".join(_FIGURE.format(url=quote(name), name=html.escape(name), query=query)
                        for name in cameras)
    cols, rows = tile_grid(len(cameras))
    return _PAGE.format(figures=figures, query=query, cols=cols, rows=rows)


def tile_grid(count: int) -> tuple[int, int]:
    """``(columns, rows)`` of the tiles of ``count`` cameras: as square a grid as fits."""
    cols = max(1, math.ceil(math.sqrt(count)))
    return cols, max(1, math.ceil(count / cols))
