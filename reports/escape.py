"""Strings from ``result.json`` files are data, never markup: escaping for Markdown and matplotlib.

Run ids, method labels, benchmark names and op names come from files anyone may have edited. In a
Markdown table a ``|`` or newline breaks the table, ``<script>`` or ``<img onerror=...>`` becomes
live HTML in most renderers, and ``[x](javascript:...)`` a link; in a matplotlib text a ``$`` starts
mathtext (a parse error aborts the figure). :func:`md` makes a string inert Markdown text;
:func:`plain_text_figures` switches mathtext off for every figure of a report (a drawing that wants
mathtext for its own labels asks for it per text with ``parse_math=True``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import matplotlib

#: Markdown punctuation that can start markup inside a line: links and images need ``[``, code a
#: backtick, emphasis ``*``, table cells end at ``|`` (``(`` or ``!`` are inert without ``[``)
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def md(value: Any) -> str:
    """``value`` as literal Markdown text on one line: HTML escaped (``<`` ``>`` ``&``), Markdown
    punctuation backslash-escaped, newlines and control characters replaced by spaces."""
    text = _CONTROL.sub(" ", str(value)).replace("\r", " ").replace("\n", " ").replace("\t", " ")
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_link(text: Any, target: str) -> str:
    """A Markdown link with escaped ``text``; ``target`` must be a relative path the report wrote
    (a slug), so it is only percent-encoded where Markdown would misread it."""
    safe = target.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{md(text)}]({safe})"


def plain_text_figures() -> None:
    """Text in figures is plain text: no mathtext (``$``), no LaTeX (``usetex``)."""
    matplotlib.rcParams["text.parse_math"] = False
    matplotlib.rcParams["text.usetex"] = False
