"""Small HTML building blocks every report section uses: tables, embedded plots, notes.

Plots are PNGs rendered with matplotlib's Agg backend and embedded as base64 data URIs, so the
report is one self-contained file that opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.note { color: #666; font-size: 0.9rem; } .error { color: #a00; }
img { max-width: 100%; }
"""


def escape(text: object) -> str:
    return html.escape(str(text))


def figure(fig: Figure, alt: str) -> str:
    """An <img> with the figure as an embedded PNG; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an HTML table, numbers rounded."""
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, na_rep="–")


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def page(title: str, subtitle: str, sections: list[str]) -> str:
    body = "\n".join(sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"{note(subtitle)}{body}</body></html>"
    )
