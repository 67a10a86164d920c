"""Building HTML safely: everything is escaped unless it is already :class:`Html`.

Pages are composed from :func:`tag`, :func:`table` and friends; a plain
``str`` handed to any of them is text (``<`` becomes ``&lt;``), so a job
name, a user, a pending reason or an exit message can never become markup.
Only this module makes :class:`Html` out of literal markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from corral.model.resources import format_bytes, format_cpu


class Html(str):
    """Markup that is safe as it is (built here from escaped parts)."""


def esc(value: Any) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(esc(sep).join(esc(p) for p in parts))


def tag(tag_name: str, *children: Any, **attrs: Any) -> Html:
    """``<name attrs>children</name>``; attribute names use ``_`` for ``-`` (``data_confirm``) and a
    trailing ``_`` for keywords (``class_``); a None or False attribute is left out."""
    shown = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        shown.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    return Html(f"<{tag_name}{''.join(shown)}>{join(children)}</{tag_name}>")


def void(tag_name: str, **attrs: Any) -> Html:
    """An element without content or end tag (``input``, ``meta``, ``link``)."""
    return Html(tag(tag_name, **attrs)[: -len(f"</{tag_name}>")])


def path(*segments: Any, **query: Any) -> str:
    """A /ui URL: each segment quoted whole (a job name never adds a path segment)."""
    url = "/ui/" + "/".join(quote(str(s), safe="") for s in segments)
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return url + ("?" + urlencode(kept) if kept else "")


def link(text: Any, *segments: Any, **query: Any) -> Html:
    return tag("a", text, href=path(*segments, **query))


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], **attrs: Any) -> Html:
    head = tag("thead", tag("tr", *(tag("th", h) for h in headers)))
    body = tag("tbody", *(tag("tr", *(tag("td", c) for c in row)) for row in rows))
    return tag("table", head, body, **attrs)


def cpu(millicores: int) -> str:
    return format_cpu(int(millicores))


def mem(nbytes: int) -> str:
    return format_bytes(int(nbytes))


def gpu(milli: int) -> str:
    return f"{int(milli) / 1000:g}"


SHOWN = {"cpu": cpu, "memory": mem, "disk": mem, "gpu": gpu}


def bar(parts: Sequence[tuple[str, int]], total: int, used: int | None = None) -> Html:
    """A horizontal bar: one segment per (css class, amount) out of ``total``, and a marker at ``used``."""
    if total <= 0:
        return tag("div", "none", class_="bar empty")
    segments = [tag("span", "", class_=f"seg {cls}", style=f"width:{100 * amount / total:.2f}%", title=cls)
                for cls, amount in parts if amount > 0]
    if used is not None and used > 0:
        segments.append(tag("span", "", class_="used", style=f"left:{min(100.0, 100 * used / total):.2f}%"))
    return tag("div", *segments, class_="bar")


def chart(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]], shown: Any = str,
          width: int = 560, height: int = 160) -> Html:
    """A line chart (inline SVG) whose axes fit the data: x from the first to the last sample,
    y from 0 to the largest value (never a fixed 0-100 %)."""
    points = [p for _, values in series for p in values]
    if len(points) < 2:
        return tag("figure", tag("figcaption", title), tag("p", "no samples yet", class_="muted"), class_="chart")
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) or 1
    span = (t1 - t0) or 1
    pad = 4

    def xy(p: tuple[float, float]) -> str:
        x = pad + (width - 2 * pad) * (p[0] - t0) / span
        y = height - pad - (height - 2 * pad) * p[1] / top
        return f"{x:.1f},{y:.1f}"

    lines = [tag("polyline", tag("title", name), points=" ".join(xy(p) for p in values),
                 class_=f"line l{i}", fill="none") for i, (name, values) in enumerate(series) if values]
    svg = tag("svg", *lines, viewBox=f"0 0 {width} {height}", width=width, height=height, role="img",
              aria_label=title)
    legend = tag("ul", *(tag("li", tag("span", "", class_=f"key l{i}"), name) for i, (name, _) in enumerate(series)),
                 class_="legend")
    scale = tag("p", f"0 – {shown(top)} over the last {span:.0f} s", class_="muted")
    return tag("figure", tag("figcaption", title), svg, legend, scale, class_="chart")


def layout(title: str, body: Html, user: str, csrf: str, nav: str = "", static: Html = Html("")) -> Html:
    """The whole page: head, navigation, ``static`` (forms: kept while polling) and ``body`` inside
    ``#live`` (what polling replaces)."""
    tabs = [("cell", "Cell"), ("jobs", "Jobs"), ("users", "Users")]
    menu = tag("nav", *(tag("a", text, href=path(key), class_="on" if key == nav else None) for key, text in tabs),
               tag("span", f"signed in as {user}", class_="who"),
               tag("form", tag("button", "Sign out", type="submit"), void("input", type="hidden", name="csrf",
                                                                           value=csrf),
                   method="post", action=path("logout"), class_="inline"))
    head = tag("head", void("meta", charset="utf-8"), tag("title", f"{title} · corral"),
               void("meta", name="viewport", content="width=device-width, initial-scale=1"),
               void("meta", name="csrf", content=csrf),
               void("link", rel="stylesheet", href="/ui/static/ui.css"),
               tag("script", "", src="/ui/static/ui.js", defer=True))
    main = tag("main", tag("h1", title), tag("div", "", id="flash", role="status"), static,
               tag("div", body, id="live"))
    return Html("<!doctype html>" + tag("html", head, tag("body", menu, main), lang="en"))
