"""The HTML run report (imagerank.evaluation.html): self-contained, escaped, every section optional.

No Spark here: the report is a plain dict built in the test. The last test opens the page in headless
Chromium (skipped where /usr/bin/chromium is absent) to check it renders from disk with no errors.
"""

import base64
import io
import random
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from imagerank.evaluation.html import render

PROVIDERS = ["flickr", "smithsonian", "wikimedia"]
SCORERS = ["authority", "model", "baseline_2020", "visualrank"]
SECTIONS = ["first-figure", "evaluation", "distributions", "predictions", "top-images", "coverage",
            "provider-authority", "stages", "engines"]
INJECTED = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
# a src= or href= whose value loads from the network (http:, https: or protocol-relative //)
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
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
    assert "<td>–</td>" in sections["evaluation"]  # visualrank on smithsonian has no Spearman
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
