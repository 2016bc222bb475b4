"""The review view added to the live-view page: the list of recent events, filters, and a
``<video>`` that plays an event's clip. Plain files in ``review/`` (no build step, no CDN)."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path

_FOLDER = Path(__file__).with_name("review")
_ASSETS = {"/review.js": ("review.js", "text/javascript; charset=utf-8"),
           "/review.css": ("review.css", "text/css; charset=utf-8")}

_SECTION = """<section id="review" aria-label="recent events">
<form id="review-filters">
  <select name="camera"><option value="">all cameras</option>{cameras}</select>
  <input name="label" placeholder="label" size="8">
  <input name="zone" placeholder="zone" size="8">
  <input name="day" type="date">
</form>
<div id="review-player" hidden><video id="review-video" controls playsinline muted></video>
<p id="review-caption"></p></div>
<ol id="review-events"></ol>
<button id="review-more" hidden>more</button>
</section>
<script src="review.js{query}"></script>
"""


@cache
def _read(name: str) -> bytes:
    return (_FOLDER / name).read_bytes()


def review_asset(path: str) -> tuple[str, bytes] | None:
    """``(content type, bytes)`` of a review page file, ``None`` for another path."""
    entry = _ASSETS.get(path)
    return None if entry is None else (entry[1], _read(entry[0]))


def with_review(page: str, token_query: str, cameras: list[str] | None = None) -> str:
    """The live-view page with the review view below the live tiles."""
    query = html.escape(f"?{token_query}") if token_query else ""
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>'
                      for c in cameras or [])
    head = f'<link rel="stylesheet" href="review.css{query}">\n</head>'
    page = page.replace("</head>", head, 1)
    return page.replace("</body>", _SECTION.format(cameras=options, query=query) + "</body>", 1)
