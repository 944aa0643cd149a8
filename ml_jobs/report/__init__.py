"""The basketcast report: one self-contained HTML page people would rather look at than read.

A section is a module of this package with a `TITLE` and a function
`section(paths, target) -> str` (`target`: the dbt output whose warehouse it reads, unset for
BASKETCAST_DBT_TARGET) that returns an HTML fragment (use the helpers in `ml_jobs.report.html`;
return "" to leave the section out). `SECTIONS` lists the modules in page order; a listed
module that does not exist yet is skipped, and a section that raises shows its error in place
of its content, so one broken or not-yet-run product never hides the others.

    build_report(paths, target)  ->  $BASKETCAST_HOME/reports/report.html
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Callable
from pathlib import Path

from ml_jobs.config import Paths
from ml_jobs.report.html import escape, page

SECTIONS: list[str] = ["demand", "users"]  # modules of ml_jobs.report, in page order
Section = Callable[[Paths, str | None], str]


def report_path(paths: Paths) -> Path:
    return paths.home / "reports" / "report.html"


def sections() -> list[tuple[str, Section]]:
    """(title, section function) of every listed section module that exists."""
    found: list[tuple[str, Section]] = []
    for name in SECTIONS:
        try:
            module = importlib.import_module(f"ml_jobs.report.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"ml_jobs.report.{name}":
                continue
            raise
        found.append((getattr(module, "TITLE", name), module.section))
    return found


def build_report(paths: Paths, target: str | None = None) -> Path:
    """Render every section into reports/report.html (written atomically) and return its path."""
    parts: list[str] = []
    for title, section in sections():
        try:
            fragment = section(paths, target)
        except Exception as error:  # one failing section must not hide the others
            fragment = (
                f"<h2>{escape(title)}</h2>"
                f'<p class="error">section failed: {escape(type(error).__name__)}: '
                f"{escape(error)}</p>"
            )
        if fragment:
            parts.append(fragment)
    if not parts:
        parts.append("<p>Nothing to show yet: run `basketcast forecast` first.</p>")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = page("basketcast report", f"warehouse {paths.warehouse}, built {now}", parts)
    target = report_path(paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, target)
    return target


__all__ = ["SECTIONS", "build_report", "report_path", "sections"]
