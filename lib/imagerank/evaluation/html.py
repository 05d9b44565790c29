"""One self-contained HTML page of an evaluate report: tables, and plots drawn as inline SVG in Python.

    page = render(report)   # a str: no server, no network, no script; opens from disk

Every key of the report is optional: what is absent is said to be "not computed". Every string of the
report is escaped (identifiers, URLs and domains come from crawled, untrusted data), thumbnails are
shown only as ``data:image/...`` URIs, and a Content-Security-Policy forbids any other load (an image
without pixels is a labelled box with its URL as a plain link: a navigation, never a load).

The page fits a 1280 px window with no sideways scroll, whatever the data: top images wrap in a grid, a
long name or URL wraps or is cut with an ellipsis, a plot scales down, and a table wider than the page
scrolls inside a box of its own.
"""

from __future__ import annotations

import html
import json
import math

ALL = "all"
DASH = "–"
MISSING = '<p class="missing">not computed</p>'
COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
          "#9c755f", "#bab0ac")
METRICS = (("spearman", "spearman"), ("kendall", "kendall"), ("ndcg_10", "ndcg@10"), ("ndcg_100", "ndcg@100"),
           ("r2", "r2"), ("n", "n"), ("chance", "chance"))
COVERAGE = ("provider", "images", "crawl_image", "landing_page", "domain", "nothing", "popularity_observed")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222;
overflow-wrap:anywhere}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:12px}
th,td{border:1px solid #ddd;padding:2px 5px;text-align:right}
th{overflow-wrap:normal}td.n{white-space:nowrap}td:not(.n){min-width:12em}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
svg.plot{background:#fff;border:1px solid #eee;margin:4px;max-width:calc(100% - 8px);height:auto;box-sizing:border-box}
svg text{font:11px sans-serif;fill:#333}
.missing{color:#999;font-style:italic}
.note{background:#fff8e1;border:1px solid #f0d88a;padding:.5em .8em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(200px,100%),1fr));gap:10px}
.card{border:1px solid #ddd;border-radius:4px;padding:6px;font-size:12px;min-width:0}
.card img,.placeholder{width:100%;height:140px;object-fit:contain;display:block;box-sizing:border-box}
.placeholder{border:1px dashed #999;background:#fafafa;color:#555;padding:8px;display:flex;flex-direction:column;
justify-content:center;align-items:center;gap:6px;text-align:center}
.placeholder .url,.card li{max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.card ul{margin:2px 0;padding-left:.4em;list-style-position:inside}
pre{background:#f7f7f7;padding:6px;overflow:auto}nav a{margin-right:1em}"""


def _e(value) -> str:
    """Any value as escaped text (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def _number(value) -> float | None:
    """A finite float, or None (for None, booleans, NaN, infinities and non-numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt(value) -> str:
    """A cell: floats to 3 decimals, integers as they are, booleans yes/no, None as a dash; escaped."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _e(value)


def _rows(value) -> list[dict]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _providers(names) -> list[str]:
    """Provider names sorted, "all" last."""
    return sorted({str(name) for name in names}, key=lambda name: (name == ALL, name))


def _cell(value) -> str:
    """A td: a number, a dash, yes/no or a short name never breaks (class n); a long text (a URL, an
    identifier) wraps anywhere, so that no cell holds its column wider than its table's box."""
    short = value is None or isinstance(value, (bool, int, float)) or len(str(value)) <= 24
    return f'<td class="n">{fmt(value)}</td>' if short else f"<td>{fmt(value)}</td>"


def _table(rows: list[dict], columns) -> str:
    """A table in a box of its own that scrolls sideways where it is wider than the page (the page never does);
    headers may break after an underscore."""
    head = "".join(f"<th>{_e(label).replace('_', '_<wbr>')}</th>" for _, label in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(key)) for key, _ in columns) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _svg(title: str, width: float, height: float, body: str) -> str:
    return (f'<svg class="plot" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'role="img"><title>{_e(title)}</title>{body}</svg>')


def _text(x: float, y: float, text, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{_e(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, style: str = 'stroke="#999"') -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}/>'


def _short(text, size: int) -> str:
    """A label cut to ``size`` characters with an ellipsis: SVG text does not wrap (the full name is in the table)."""
    text = str(text)
    return text if len(text) <= size else text[:max(size - 1, 1)] + "…"


def hbars(title: str, items: list[tuple]) -> str:
    """Horizontal bars over [-1, 1] with a zero line; items are (label, value, note)."""
    left, span, step, top = 150, 360, 22, 24
    height = top + step * len(items) + 8
    x = lambda v: left + (max(-1.0, min(1.0, v)) + 1) / 2 * span  # noqa: E731
    parts = [_line(x(t), top - 6, x(t), height - 4, 'stroke="#eee"') + _text(x(t), top - 10, f"{t:g}", "middle")
             for t in (-1, -0.5, 0, 0.5, 1)]
    for i, (label, value, note) in enumerate(items):
        y, value = top + i * step, _number(value)
        parts.append(_text(left - 6, y + 14, _short(label, 22), "end"))
        if value is not None:
            x0, x1 = sorted((x(0), x(value)))
            parts.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{step - 6}" '
                         f'fill="{"#bbb" if note else COLORS[0]}"/>')
        parts.append(_text(x(1) + 8, y + 14, f"{fmt(value)} {note}".strip()))
    parts.append(_line(x(0), top - 6, x(0), height - 4, 'stroke="#000"'))
    return _svg(title, left + span + 190, height, "".join(parts))


def grouped_bars(title: str, providers: list[str], scorers: list[str], value) -> str:
    """Vertical bars over [-1, 1], one group per provider, one bar per scorer; value(scorer, provider)."""
    bar, left, top, tall = 9, 40, 14, 220
    group = max(bar * len(scorers) + 18, 90)
    width = left + group * len(providers) + 10
    y = lambda v: top + (1 - max(-1.0, min(1.0, v))) / 2 * tall  # noqa: E731
    parts = [_line(left, y(t), width, y(t), 'stroke="#eee"') + _text(left - 4, y(t) + 4, f"{t:g}", "end")
             for t in (-1, -0.5, 0, 0.5, 1)]
    for g, provider in enumerate(providers):
        x0 = left + g * group + (group - bar * len(scorers)) / 2
        label = _short(provider, int(group / 6.5))
        parts.append(_text(x0 + bar * len(scorers) / 2, top + tall + 16, label, "middle"))
        for s, scorer in enumerate(scorers):
            v = _number(value(scorer, provider))
            if v is not None:
                a, b = sorted((y(0), y(v)))
                parts.append(f'<rect x="{x0 + s * bar:.1f}" y="{a:.1f}" width="{bar - 1}" height="{max(b - a, 1):.1f}" '
                             f'fill="{COLORS[s % len(COLORS)]}"><title>{_e(scorer)} on {_e(provider)}: '
                             f'{v:.3f}</title></rect>')
    parts.append(_line(left, y(0), width, y(0), 'stroke="#000"'))
    for s, scorer in enumerate(scorers):
        parts.append(f'<rect x="{width + 10}" y="{top + s * 16}" width="10" height="10" '
                     f'fill="{COLORS[s % len(COLORS)]}"/>' + _text(width + 24, top + s * 16 + 9, _short(scorer, 24)))
    return _svg(title, width + 180, max(top + tall + 26, top + 16 * len(scorers) + 10), "".join(parts))


def histogram(provider: str, values, bins: int = 20) -> str:
    """Counts of values in ``bins`` equal bins over [0, 1] (values outside fall in the end bins)."""
    counts = [0] * bins
    for value in (_number(v) for v in values or []):
        if value is not None:
            counts[min(bins - 1, max(0, int(value * bins)))] += 1
    width, height, pad, peak = 240, 120, 20, max(counts) or 1
    step = (width - 2 * pad) / bins
    parts = [f'<rect x="{pad + i * step:.1f}" y="{height - pad - c / peak * (height - 2 * pad - 10):.1f}" '
             f'width="{step - 1:.1f}" height="{c / peak * (height - 2 * pad - 10):.1f}" fill="{COLORS[0]}"/>'
             for i, c in enumerate(counts)]
    parts += [_line(pad, height - pad, width - pad, height - pad), _text(pad, height - 6, "0", "middle"),
              _text(width - pad, height - 6, "1", "middle"),
              _text(pad, 14, f"{_short(provider, 26)} (n={sum(counts)})")]
    return _svg(f"popularity of {provider}", width, height, "".join(parts))


def scatter(points: list[dict]) -> str:
    """Predicted against observed popularity, one colour per provider, with the diagonal."""
    kept = [(o, p, str(r.get("provider"))) for r in points
            if (o := _number(r.get("observed"))) is not None and (p := _number(r.get("predicted"))) is not None]
    values = [v for o, p, _ in kept for v in (o, p)]
    lo, hi = min([0.0, *values]), max([1.0, *values])
    size, pad = 420, 40
    at = lambda v: pad + (v - lo) / (hi - lo) * (size - 2 * pad)  # noqa: E731
    providers = _providers(name for _, _, name in kept)
    color = {name: COLORS[i % len(COLORS)] for i, name in enumerate(providers)}
    parts = [_line(at(lo), size - at(lo), at(hi), size - at(hi), 'stroke="#000" stroke-dasharray="4 3"')]
    parts += [f'<circle cx="{at(o):.1f}" cy="{size - at(p):.1f}" r="2" fill="{color[name]}" fill-opacity="0.5"/>'
              for o, p, name in kept]
    parts += [_line(pad, size - pad, size - pad, size - pad), _line(pad, pad, pad, size - pad),
              _text(size / 2, size - 8, "observed", "middle"), _text(12, size / 2, "predicted", "middle",
                                                                      f' transform="rotate(-90 12 {size / 2})"'),
              _text(pad, size - pad + 14, f"{lo:.2f}", "middle"),
              _text(size - pad, size - pad + 14, f"{hi:.2f}", "middle"),
              _text(pad - 4, size - pad + 4, f"{lo:.2f}", "end"), _text(pad - 4, pad + 4, f"{hi:.2f}", "end")]
    parts += [f'<rect x="{size + 4}" y="{pad + i * 16}" width="10" height="10" fill="{color[name]}"/>'
              + _text(size + 18, pad + i * 16 + 9, _short(name, 22)) for i, name in enumerate(providers)]
    return _svg(f"predicted against observed popularity ({len(kept)} points)", size + 160, size, "".join(parts))


def _first_figure(report: dict) -> str:
    rows = _rows(report.get("authority_vs_popularity")) or [
        r for r in _rows(report.get("figures")) if r.get("scorer") == "authority"]
    if not rows:
        return MISSING
    rows = sorted(rows, key=lambda r: (str(r.get("provider")) == ALL, str(r.get("provider"))))
    items = [(r.get("provider"), r.get("spearman"), "no better than chance" if r.get("chance") else "") for r in rows]
    return (_table(rows, [("provider", "provider"), *METRICS])
            + hbars("Spearman of authority against observed popularity, per provider", items))


def _scorers(rows: list[dict], named) -> list[str]:
    """model first, then each single signal in the report's order, baseline_2020 last."""
    seen = list(dict.fromkeys([*(named if isinstance(named, list) else []), *(r.get("scorer") for r in rows)]))
    seen = [str(s) for s in seen if s is not None and any(r.get("scorer") == s for r in rows)]
    return sorted(seen, key=lambda s: {"model": 0, "baseline_2020": 2}.get(s, 1))


def _evaluation(report: dict) -> str:
    rows = _rows(report.get("figures"))
    if not rows:
        return MISSING
    scorers, providers = _scorers(rows, report.get("scorers")), _providers(r.get("provider") for r in rows)
    cell = {(str(r.get("scorer")), str(r.get("provider"))): r for r in rows}
    parts = [grouped_bars("Spearman against observed popularity, per provider and scorer", providers, scorers,
                          lambda s, p: cell.get((s, p), {}).get("spearman"))]
    chance = report.get("no_better_than_chance")
    if isinstance(chance, list) and chance:
        parts.append(f"<p>No better than chance: {_e(', '.join(map(str, chance)))}</p>")
    for scorer in scorers:
        mine = [cell[(scorer, p)] for p in providers if (scorer, p) in cell]
        parts.append(f"<h3>{_e(scorer)}</h3>" + _table(mine, [("provider", "provider"), *METRICS]))
    return "".join(parts)


def _image_url(image: dict) -> str | None:
    """The image's own address: its url or image_url, else its image_key where that is a URL (a key such as
    flickr:<id> or wikimedia:<file> is not)."""
    for key in ("url", "image_url", "image_key"):
        value = image.get(key)
        if isinstance(value, str) and value.strip():
            if key != "image_key" or value.lower().startswith(("http://", "https://")):
                return value.strip()
    return None


def _placeholder(image: dict) -> str:
    """What stands for an image without pixels (no --images, or a file that does not decode): a box that says so,
    "crawl image" where the crawl found it (image_match, or pages showing it), and the image's URL on one line cut
    with an ellipsis, so that no URL widens the page, its whole text in the title. An http(s) URL is a link (a
    navigation, not a load: the page still loads nothing); any other address is text."""
    url = _image_url(image)
    label = "no pixels: crawl image" if image.get("image_match") or image.get("pages") else "no pixels"
    if url is None:
        address = ""
    elif url.lower().startswith(("http://", "https://")):
        address = f'<a class="url" href="{_e(url)}" title="{_e(url)}" rel="noopener noreferrer nofollow">{_e(url)}</a>'
    else:
        address = f'<span class="url" title="{_e(url)}">{_e(url)}</span>'
    return f'<div class="placeholder"><span>{label}</span>{address}</div>'


def _card(image: dict) -> str:
    thumb, name = image.get("thumbnail"), image.get("identifier")
    picture = (f'<img src="{_e(thumb)}" alt="{_e(name)}">' if isinstance(thumb, str) and thumb.startswith("data:image/")
               else _placeholder(image))
    fields = "".join(f"<br>{label}: {fmt(image.get(key))}" for key, label in (
        ("score", "score"), ("authority", "authority"), ("popularity", "popularity"),
        ("visualrank", "VisualRank"), ("family_size", "family size")))
    lists = ""
    for key in ("pages", "domains"):
        values = image.get(key) if isinstance(image.get(key), list) else []
        more = f"<li>… {len(values) - 5} more</li>" if len(values) > 5 else ""
        items = "".join(f'<li title="{_e(v)}">{_e(v)}</li>' for v in values[:5])  # one line each, cut with "…"
        lists += f"<div>{key}:<ul>{items}{more}</ul></div>"
    why = f"<br><i>{_e(image['why'])}</i>" if isinstance(image.get("why"), str) else ""
    return f'<div class="card">{picture}<b>{_e(name)}</b>{fields}{why}{lists}</div>'


def _top_images(report: dict) -> str:
    top = report.get("top_images")
    if not isinstance(top, dict) or not top:
        return MISSING
    return "".join(f"<h3>{_e(p)}</h3><div class=\"cards\">" + "".join(_card(i) for i in _rows(top.get(p))) + "</div>"
                   for p in _providers(top) if p in top)


PROVIDER_COLUMNS = ("provider", "boost", "openverse_boost", "openverse_type", "trusted", "main_site",
                    "domain_pagerank", "trust", "spam_mass", "harmonic_centrality", "pages_showing", "domains_showing",
                    "median_image_authority", "images", "images_in_crawl")


def _json(value) -> str:
    return _e(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _section_bodies(report: dict) -> list[tuple[str, str, str]]:
    dist, points = report.get("distributions"), _rows(report.get("predictions"))
    coverage, stages, engines = _rows(report.get("coverage")), report.get("stages"), report.get("engines")
    columns = list(dict.fromkeys([*COVERAGE, *(k for r in coverage for k in r)]))
    providers = _rows(report.get("provider_authority"))
    return [
        ("first-figure", "Authority against observed popularity", _first_figure(report)),
        ("evaluation", "Evaluation of each scorer", _evaluation(report)),
        ("distributions", "Popularity per provider", "".join(histogram(p, dist.get(p)) for p in _providers(dist))
         if isinstance(dist, dict) and dist else MISSING),
        ("predictions", "Predicted against observed popularity",
         scatter(points) if points else '<p class="missing">no predictions (not computed)</p>'),
        ("top-images", "Top images per provider", _top_images(report)),
        ("coverage", "Coverage per provider", _table(coverage, [(c, c) for c in columns]) if coverage else MISSING),
        ("provider-authority", "Provider authority: measured boost beside Openverse's static one",
         _table(providers, [(c, c) for c in PROVIDER_COLUMNS]) if providers else MISSING),
        ("stages", "What each stage read, wrote and skipped", "".join(
            f"<details><summary>{_e(name)}</summary><pre>{_json(value)}</pre></details>"
            for name, value in stages.items()) if isinstance(stages, dict) and stages else MISSING),
        ("engines", "Engines", f"<pre>{_json(engines)}</pre>" if engines else MISSING),
    ]


def render(report: dict, title: str = "imagerank run report") -> str:
    """The whole report as one HTML page (a str), self-contained: inline style and SVG, no script."""
    report = report if isinstance(report, dict) else {}
    sections = _section_bodies(report)
    nav = "".join(f'<a href="#{sid}">{_e(heading)}</a>' for sid, heading, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(heading)}</h2>{content}</section>'
                   for sid, heading, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{_e(title)}</h1>{_note(report)}<nav>{nav}</nav>{body}</body></html>\n")


def _note(report: dict) -> str:
    """The report's note (where its data come from: the demo's is generated), above everything."""
    note = report.get("note")
    return f'<p class="note"><strong>Note.</strong> {_e(str(note))}</p>' if note else ""
