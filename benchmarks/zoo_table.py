"""Render docs/zoo_status.json (written by ``benchmarks.zoo_sweep``) into README.md's zoo table.

    python -m benchmarks.zoo_table           # rewrite the table between the README markers
    python -m benchmarks.zoo_table --check   # exit 1 when README differs from the rendering

The table sits between ``<!-- zoo-table:begin -->`` and ``<!-- zoo-table:end -->``; nothing
else in README is touched. Configs the sweep listed but has not run yet show as "not yet
compared". ``docs/zoo_findings.json`` (config -> text) adds what a mismatch was found to be (a
tie, with the test that shows it) after the sweep's own detail; the status stays the sweep's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
STATUS_FILE = REPO_ROOT / "docs" / "zoo_status.json"
FINDINGS_FILE = REPO_ROOT / "docs" / "zoo_findings.json"
README = REPO_ROOT / "README.md"
BEGIN = "<!-- zoo-table:begin -->"
END = "<!-- zoo-table:end -->"
# JSON status -> what the table says, in the order the summary counts them
LABELS = {
    "parity": "parity",
    "mismatch": "**mismatch**",
    "refused": "refused",
    "error": "**error**",
    "pending": "not yet compared",
}


def label(status: str) -> str:
    return LABELS.get(status, status)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(status: dict[str, dict[str, Any]], findings: dict[str, str] | None = None) -> str:
    """The summary line and the Markdown table (config | status | detail), one row per config;
    ``findings`` (config -> text) follow the detail of their row."""
    findings = findings or {}
    counts = Counter(entry.get("status", "pending") for entry in status.values())
    order = [s for s in LABELS if counts[s]] + sorted(set(counts) - set(LABELS))
    summary = ", ".join(f"{counts[s]} {LABELS.get(s, s).strip('*')}" for s in order)
    dates = sorted({entry["date"] for entry in status.values() if entry.get("date")})
    when = ""
    if dates:
        when = f" (swept {dates[0]}" + (f" to {dates[-1]})" if len(dates) > 1 else ")")
    lines = [f"{len(status)} configs: {summary}{when}.", "",
             "| config | status | detail |", "| --- | --- | --- |"]
    for name, entry in status.items():
        state = entry.get("status", "pending")
        detail = entry.get("detail", "")
        if name in findings:
            detail = f"{detail} Finding: {findings[name]}"
        lines.append(f"| `{name}` | {label(state)} | {_cell(detail)} |")
    return "\n".join(lines) + "\n"


def splice(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    start = readme.find(BEGIN)
    stop = readme.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"README lacks the markers {BEGIN} ... {END}")
    return readme[: start + len(BEGIN)] + "\n" + table + readme[stop:]


def load(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--status-file", type=Path, default=STATUS_FILE)
    parser.add_argument("--findings-file", type=Path, default=FINDINGS_FILE)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="exit 1 if README is out of date")
    args = parser.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    findings = load(args.findings_file) if args.findings_file.is_file() else {}
    wanted = splice(current, render(load(args.status_file), findings))
    if args.check:
        if wanted != current:
            print(f"{args.readme}: zoo table differs from {args.status_file}; "
                  "run python -m benchmarks.zoo_table", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        args.readme.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
