"""The HTML run report (imagerank.evaluation.html): self-contained, escaped, every section optional.

No Spark here: the report is a plain dict built in the test. The last tests open the page in headless
Chromium (skipped where /usr/bin/chromium is absent): it renders from disk with no errors, and at a 1280 px
wide window the browser measures no sideways scroll (issue 24), for the worst data a run can bring.
"""

import base64
import io
import random
import re
import subprocess
from html import escape
from pathlib import Path

import pytest
from PIL import Image

from imagerank.evaluation.html import CSP, render

PROVIDERS = ["flickr", "smithsonian", "wikimedia"]
SCORERS = ["authority", "model", "baseline_2020", "visualrank"]
SECTIONS = ["first-figure", "evaluation", "distributions", "predictions", "top-images", "coverage",
            "provider-authority", "stages", "engines"]
INJECTED = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
# a src= or href= whose value loads from the network (http:, https: or protocol-relative //); the href of
# an <a> is a navigation, not a load, and is looked at apart (LINK)
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
LINK = re.compile(r'<a class="url" href="(https?://[^"]*)" title="\1" rel="noopener noreferrer nofollow">')
PLOT = re.compile(r'<svg class="plot"[^>]*>')


def _thumbnail() -> str:
    image = Image.new("RGB", (24, 16), (200, 60, 30))
    image.paste((20, 90, 200), (0, 0, 12, 16))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _report() -> dict:
    rng = random.Random(7)
    figures = []
    for scorer in SCORERS:
        for provider in [*PROVIDERS, "all"]:
            rho = None if (scorer, provider) == ("visualrank", "smithsonian") else round(rng.uniform(-0.3, 0.8), 6)
            figures.append({"scorer": scorer, "provider": provider, "n": rng.randint(50, 5000), "spearman": rho,
                            "kendall": None if rho is None else rho * 0.7, "ndcg_10": rng.random(),
                            "ndcg_100": rng.random(), "r2": rng.random() / 2,
                            "chance": rho is None or abs(rho) < 0.05 or provider == "smithsonian"})
    thumb = _thumbnail()
    top = {
        "flickr": [
            {"identifier": "f-1", "score": 0.91234, "authority": 0.8, "popularity": 0.7, "visualrank": 0.01,
             "family_size": 3, "thumbnail": thumb, "pages": [f"https://a.example/p{i}" for i in range(7)],
             "domains": ["a.example", "b.example"]},
            {"identifier": f"evil {INJECTED}", "score": 0.5, "authority": None, "popularity": 0.2,
             "visualrank": None, "family_size": 1, "thumbnail": None, "pages": [], "domains": [INJECTED]},
        ],
        "wikimedia": [{"identifier": "w-1", "score": 0.4, "authority": 0.3, "popularity": 0.9, "visualrank": 0.2,
                       "family_size": 12, "thumbnail": thumb, "pages": ["https://commons.example/wiki/x"],
                       "domains": ["commons.example"]}],
    }
    return {
        "authority_vs_popularity": [r for r in figures if r["scorer"] == "authority"],
        "scorers": sorted(SCORERS),
        "no_better_than_chance": [f"{r['scorer']} on {r['provider']}" for r in figures if r["chance"]],
        "figures": figures,
        "distributions": {p: [rng.betavariate(2, 5) for _ in range(2000)] for p in PROVIDERS},
        "predictions": [{"provider": rng.choice(PROVIDERS), "observed": (o := rng.random()),
                         "predicted": min(1.0, max(0.0, o + rng.gauss(0, 0.15)))} for _ in range(5000)],
        "top_images": top,
        "coverage": [{"provider": p, "images": 1000, "crawl_image": 400, "landing_page": 300, "domain": 200,
                      "nothing": 100, "popularity_observed": 0.75} for p in PROVIDERS],
        "provider_authority": [{"provider": p, "boost": 91.25, "openverse_boost": 80, "openverse_type": "social_media",
                                "trusted": False, "main_site": f"{p}.example", "domain_pagerank": 0.01,
                                "trust": None, "spam_mass": None, "pages_showing": 12, "domains_showing": 3,
                                "sites": [f"{p}.example", INJECTED]} for p in PROVIDERS],
        "stages": {"publish": {"read": ["authority"], "wrote": ["table"], "skipped": {"no popularity": 3}},
                   "evaluate": {"read": ["table"], "wrote": ["evaluation"], "note": INJECTED}},
        "engines": {"spark": "4.1.0", "graphframes": None, "python": "3.12"},
    }


def _sections(page: str) -> dict:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.DOTALL))


def test_full_report_is_self_contained_and_escaped():
    report = _report()
    page = render(report, title=f"run {INJECTED}")
    assert page.startswith("<!DOCTYPE html>")
    assert not REMOTE.findall(page)
    assert "<script" not in page.lower() and "alert(1)" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    sections = _sections(page)
    assert list(sections) == SECTIONS
    assert "not computed" not in page
    # one bar chart each for the first figure and the evaluation, a histogram per provider, one scatter
    plots = PLOT.findall(page)
    assert len(plots) == 1 + 1 + len(PROVIDERS) + 1
    assert len(re.findall(r'<svg class="plot"[^>]*><title>[^<]+</title>', page)) == len(plots)
    assert "no better than chance" in sections["first-figure"]
    assert sections["evaluation"].count("<h3>") == len(SCORERS)
    order = [re.search(rf"<h3>{s}</h3>", sections["evaluation"]).start() for s in
             ["model", "authority", "visualrank", "baseline_2020"]]
    assert order == sorted(order)  # model first, the single signals, baseline_2020 last
    assert f"{report['figures'][0]['spearman']:.3f}" in sections["evaluation"]
    assert '<td class="n">–</td>' in sections["evaluation"]  # visualrank on smithsonian has no Spearman
    assert sections["top-images"].count(f'<img src="{report["top_images"]["flickr"][0]["thumbnail"]}"') == 2
    assert sections["top-images"].count('class="placeholder"') == 1
    assert sections["top-images"].count('class="card"') == 3
    assert "https://a.example/p4" in sections["top-images"] and "https://a.example/p5" not in sections["top-images"]
    assert "… 2 more" in sections["top-images"] and "0.912" in sections["top-images"]
    assert sections["stages"].count("<details>") == 2 and "<pre>" in sections["stages"]
    assert "4.1.0" in sections["engines"] and "0.750" in sections["coverage"]
    assert "91.25" in sections["provider-authority"] and "social_media" in sections["provider-authority"]


def test_only_figures_says_not_computed():
    report = _report()
    page = render({"figures": report["figures"]})
    sections = _sections(page)
    assert list(sections) == SECTIONS
    assert "no better than chance" in sections["first-figure"]  # drawn from the authority rows of figures
    assert len(PLOT.findall(page)) == 2
    assert "no predictions" in sections["predictions"]
    for name in SECTIONS[2:]:
        assert "not computed" in sections[name], name
    empty = _sections(render({}))
    assert all("not computed" in body for body in empty.values())


def _chromium(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless check needs /usr/bin/chromium, which is not installed")
def test_renders_in_headless_chromium(tmp_path):
    report = _report()
    index = tmp_path / "index.html"
    index.write_text(render(report), encoding="utf-8")
    screenshot = tmp_path / "report.png"
    shot = _chromium(tmp_path, "shot", f"--screenshot={screenshot}", "--window-size=1280,2400", index.as_uri())
    print(f"screenshot: {screenshot}")
    assert screenshot.exists(), shot.stderr[-2000:]
    assert screenshot.stat().st_size > 20_000
    dom = _chromium(tmp_path, "dom", "--dump-dom", index.as_uri())
    for run in (shot, dom):
        for error in ("Uncaught", "SyntaxError", "Refused to", "Content Security Policy"):
            assert error not in run.stderr, run.stderr[-2000:]
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<img src="data:image/jpeg;base64,') == 2
    assert len(PLOT.findall(dom.stdout)) == 1 + 1 + len(PROVIDERS) + 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout and "<script" not in dom.stdout.lower()


LONG_PROVIDER = "provider_" + "with_a_name_far_too_long_" * 5 + "x" * 60
HOSTILE_URL = 'https://img.example/a"onmouseover=alert(1)<b>.jpg'


def _crawl_url(i: int) -> str:
    """A crawl image URL of some 700 characters, most of them with no break opportunity."""
    return f"https://cdn{i}.images-of-a-very-long-host-name.example.org/" + "a" * 500 + f"{i}.jpg?" + "w=1&" * 40


def _worst_report() -> dict:
    """The ordinary report with the worst a run can bring: many top images, several of them crawl images
    without pixels and with very long URLs, long identifiers and domains, a provider whose name is long,
    twelve providers (a wide bar chart), a coverage table with many columns and long cells."""
    report = _report()
    providers = [*PROVIDERS, LONG_PROVIDER, *(f"provider_{i:02d}" for i in range(8))]
    crawl = [{"identifier": f"crawl-{i}-" + "z" * 150, "provider": "flickr", "score": 0.3 - i / 100,
              "authority": 0.2, "popularity": None, "image_key": _crawl_url(i), "image_match": "exact",
              "pages": [_crawl_url(i).replace("cdn", "page")], "domains": ["d" * 120 + ".example"],
              "thumbnail": None, "why": "authority 0.200 (crawl match: exact)"} for i in range(6)]
    report["top_images"]["flickr"] = report["top_images"]["flickr"] + crawl + [
        dict(report["top_images"]["flickr"][0], identifier=f"f-{i}-" + "y" * 80) for i in range(6)]
    report["top_images"][LONG_PROVIDER] = crawl[:2]
    report["figures"] = report["figures"] + [dict(row, provider=provider) for row in report["figures"]
                                             if row["provider"] == "flickr" for provider in providers[3:]]
    report["authority_vs_popularity"] = [r for r in report["figures"] if r["scorer"] == "authority"]
    report["coverage"] = report["coverage"] + [
        {"provider": LONG_PROVIDER, "images": 10**9, **{f"extra_column_{i}": "v" * 40 for i in range(12)}}]
    report["provider_authority"] = report["provider_authority"] + [
        dict(report["provider_authority"][0], provider=LONG_PROVIDER, main_site="m" * 90 + ".example")]
    report["distributions"][LONG_PROVIDER] = report["distributions"]["flickr"]
    return report


def test_crawl_image_is_a_labelled_placeholder_with_its_url_as_a_link():
    report = _worst_report()
    report["top_images"]["wikimedia"] += [
        {"identifier": "hostile", "score": 0.1, "image_key": HOSTILE_URL, "image_match": "exact", "thumbnail": None},
        {"identifier": "scripted", "score": 0.1, "image_url": "javascript:alert(1)", "image_match": "exact"},
        {"identifier": "identity", "score": 0.1, "image_key": "flickr:123", "thumbnail": None}]
    page = render(report)
    top = _sections(page)["top-images"]
    assert not REMOTE.findall(ANCHOR.sub("", page))  # links navigate; nothing loads from the network
    boxes = re.findall(r'<div class="placeholder">(.*?)</div>', top)
    assert len(boxes) == 6 + 2 + 1 + 3  # crawl images: six under flickr, two under LONG_PROVIDER; evil; these 3
    links = LINK.findall(top)
    assert sorted(links) == sorted(escape(url) for url in [*map(_crawl_url, [*range(6), 0, 1]), HOSTILE_URL])
    assert escape(HOSTILE_URL) == "https://img.example/a&quot;onmouseover=alert(1)&lt;b&gt;.jpg"
    assert sum(box.startswith("<span>no pixels: crawl image</span><a class=\"url\"") for box in boxes) == 9
    assert '<span class="url" title="javascript:alert(1)">javascript:alert(1)</span>' in top  # text, not a link
    assert '<div class="placeholder"><span>no pixels</span></div>' in top  # the evil one and flickr:123
    assert 'href="javascript' not in page and "onmouseover=alert(1)<" not in page
    # every <a> is the nav's (#section) or an image's link
    assert len(ANCHOR.findall(page)) == len(SECTIONS) + len(links)


# Written into <body data-...> by the page itself, in Chromium, where the test lets it run a script (the
# report has none, and its Content-Security-Policy forbids one): the measures of the laid-out page.
MEASURE = """<script>
function measure() {
  const page = document.documentElement, body = document.body;
  const cards = [...document.querySelector("#top-images .cards").children];
  const cut = [...document.querySelectorAll(".placeholder .url")].filter(a => a.scrollWidth > a.clientWidth);
  Object.assign(body.dataset, {scrollWidth: page.scrollWidth, clientWidth: page.clientWidth,
    innerWidth: window.innerWidth, cardRows: new Set(cards.map(c => c.offsetTop)).size,
    firstRow: cards.filter(c => c.offsetTop === cards[0].offsetTop).length, cutUrls: cut.length});
}
measure();
addEventListener("load", measure);
</script>"""


def _measured(tmp_path: Path, page: str, name: str) -> dict:
    """The page's measures in headless Chromium with a 1280 px wide window (MEASURE)."""
    assert page.count(CSP) == 1 and page.count("</body>") == 1
    page = page.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace("</body>", MEASURE + "</body>")
    index = tmp_path / f"{name}.html"
    index.write_text(page, encoding="utf-8")
    run = _chromium(tmp_path, name, "--window-size=1280,1000", "--dump-dom", index.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", run.stdout)
    assert body, run.stdout[-2000:]
    measures = {key: float(value) for key, value in re.findall(r'data-([a-z-]+)="([0-9.]+)"', body.group(1))}
    assert {"scroll-width", "client-width", "inner-width", "card-rows", "first-row", "cut-urls"} <= set(measures), \
        (body.group(0), run.stderr[-2000:])
    return measures


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless check needs /usr/bin/chromium, which is not installed")
@pytest.mark.parametrize("name", ["ordinary", "worst"])
def test_fits_a_1280_px_window(tmp_path, name):
    report = _report() if name == "ordinary" else _worst_report()
    measures = _measured(tmp_path, render(report), name)
    print(name, measures)
    assert measures["inner-width"] == 1280  # the window the measure is made in
    # no sideways scroll: the page is no wider than its viewport
    assert measures["scroll-width"] <= measures["client-width"], measures
    if name == "worst":
        assert measures["card-rows"] >= 3 and measures["first-row"] >= 4, measures  # the top images wrap
        assert measures["cut-urls"] == 8, measures  # each crawl image's long URL is cut with an ellipsis


def test_a_report_note_stands_above_everything_and_is_escaped():
    from imagerank.evaluation.html import render

    page = render({"note": "Generated sample <b>synthetic</b>: its figures say nothing about real providers."})
    assert page.index('<p class="note">') < page.index("<nav>")
    assert "&lt;b&gt;synthetic&lt;/b&gt;" in page and "<b>synthetic" not in page
    assert '<p class="note">' not in render({})
