"""A report as plain data (sections of paragraphs, lists, tables, figures) and its two renderings.

Sections are built once and rendered twice: Markdown (figures as PNG files beside
it) and a single self-contained HTML file (the same PNG bytes inlined as base64,
so it opens offline and can be mailed). Jinja2 autoescaping keeps table cells
(failure reasons are arbitrary text) from breaking the HTML.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

from ablate.analysis.plots import save_figure


@dataclass
class Paragraph:
    """Plain text (no markup) shown as one paragraph."""

    text: str
    kind: str = "paragraph"


@dataclass
class Bullets:
    """A bulleted list of plain-text items."""

    items: list[str]
    kind: str = "bullets"


@dataclass
class Table:
    """A table of already formatted strings; ``numeric`` columns are right-aligned."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[bool] = field(default_factory=list)
    #: Render closed (``<details>``): rows a reader opens on demand, e.g. the undecided comparisons.
    folded: bool = False
    kind: str = "table"

    def markdown(self) -> str:
        """GitHub-flavoured Markdown table."""
        numeric = self.numeric or [False] * len(self.columns)
        rule = ["---:" if right else "---" for right in numeric]
        lines = [_md_row(self.columns), _md_row(rule, escape=False)] + [_md_row(row) for row in self.rows]
        return "\n".join(lines)


@dataclass
class Image:
    """A figure saved as ``figures/<name>.png``; ``png`` holds its bytes once rendered."""

    name: str
    caption: str
    figure: Figure | None = None
    png: bytes = b""
    kind: str = "image"

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


Block = Paragraph | Bullets | Table | Image


@dataclass
class Section:
    """A titled section; ``anchor`` is its id in the HTML table of contents."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    #: Render the blocks inside a closed ``<details>`` (the full tables after the findings).
    folded: bool = False

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def _md_row(cells: list[str], escape: bool = True) -> str:
    text = [str(c).replace("|", "\\|").replace("\n", " ") if escape else str(c) for c in cells]
    return "| " + " | ".join(text) + " |"


def autoescape(template_name: str | None) -> bool:
    """Escape every HTML template, ``x.html`` and ``x.html.j2`` alike, and templates given as strings.

    ``select_autoescape(["html"])`` matches the last extension only, so it left
    ``report.html.j2`` unescaped: a suite description or a failure reason with
    markup went into the page as HTML. Markdown templates are not HTML-escaped.
    """
    if template_name is None:
        return True
    return any(suffix in (".html", ".htm", ".xhtml", ".xml") for suffix in Path(template_name).suffixes)


def _environment() -> jinja2.Environment:
    loader = jinja2.PackageLoader("ablate.analysis.report", "templates")
    env = jinja2.Environment(loader=loader, autoescape=autoescape, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env


def render(sections: list[Section], out_dir: str | Path, *, title: str, stem: str = "report",
           dpi: int = 110) -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>.html`` and ``figures/*.png`` under ``out_dir``.

    Returns:
        ``{"html": ..., "markdown": ..., "figures": ...}`` paths.
    """
    out = Path(out_dir)
    figures = out / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for section in sections:
        for block in section.blocks:
            if isinstance(block, Image) and block.figure is not None:
                (path,) = save_figure(block.figure, figures / block.name, formats=("png",), dpi=dpi)
                block.png = path.read_bytes()
                block.figure = None  # release the memory; the bytes are all we need now
    env = _environment()
    paths = {"html": out / f"{stem}.html", "markdown": out / f"{stem}.md", "figures": figures}
    context = {"title": title, "sections": sections}
    paths["markdown"].write_text(env.get_template("report.md.j2").render(**context), encoding="utf-8")
    paths["html"].write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
    return paths
