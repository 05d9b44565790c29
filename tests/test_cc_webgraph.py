"""Common Crawl's published web-graph ranks (cc-webgraph) as inputs: the files read as released
(gzipped, tab-separated, one header line, names reversed, CRLF and blank lines tolerated, bad lines
counted), and publish's cc_* columns from them: saturated in the file's order, null and counted
where the file lacks a name."""

from __future__ import annotations

import csv
import gzip

import pytest

from imagerank.catalog.publish import run_publish
from imagerank.graph.cc_webgraph import WebgraphError, read_ranks
from imagerank.urls import host_of, icann_domain, normalize

from conftest import table

# Rows of a real release's domain ranks (cc-main-2018-aug-sep-oct-domain-ranks.txt.gz, its first
# and last lines as published), in the file's own layout
DOMAIN_HEADER = "#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t#host_rev\t#n_hosts"
REAL_DOMAIN_ROWS = [
    "1\t2.4993276E7\t2\t0.012750407517909759\tcom.facebook\t7348",
    "2\t2.4671056E7\t1\t0.01721003017179015\tcom.googleapis\t1904",
    "3\t2.3453366E7\t3\t0.010760718435453807\tcom.google\t3328",
    "87160632\t0.0\t87122767\t4.481314067744052E-9\tzw.org.youthalive\t1",
]
HOST_HEADER = "#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t#host_rev"


def _gz(path, lines: list[str], newline: str = "\n") -> str:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + newline for line in lines))
    return str(path)


def test_ranks_files_read_as_released(spark, tmp_path):
    folder = tmp_path / "domain-ranks"
    folder.mkdir()
    _gz(folder / "part-00.txt.gz", [DOMAIN_HEADER, *REAL_DOMAIN_ROWS[:2], ""], newline="\r\n")
    _gz(folder / "part-01.txt.gz", [REAL_DOMAIN_ROWS[2], "   ", "x\tnot-a-number\t3\t0.1\tcom.bad\t1",
                                    "4\t1.0\t4\t0.1\tcom.short", REAL_DOMAIN_ROWS[3]])
    ranks, report = read_ranks(spark, str(folder), "domain")  # a folder of split parts: one table
    rows = {r["name"]: r for r in ranks.collect()}
    assert set(rows) == {"facebook.com", "googleapis.com", "google.com", "youthalive.org.zw"}
    assert rows["googleapis.com"]["pagerank"] == 0.01721003017179015 and rows["googleapis.com"]["pagerank_pos"] == 1
    assert rows["facebook.com"]["harmonic"] == 24993276.0 and rows["facebook.com"]["n_hosts"] == 7348
    assert report["lines"] == 4 and report["skipped"] == {"bad_line": 2}
    assert sorted(report["bad_line_examples"]) == ["4\t1.0\t4\t0.1\tcom.short", "x\tnot-a-number\t3\t0.1\tcom.bad\t1"]
    hosts, host_report = read_ranks(spark, _gz(tmp_path / "host-ranks.txt.gz", [
        HOST_HEADER, "1\t3.0E7\t1\t0.02\tcom.youtube", "2\t2.9E7\t5\t0.01\tbe.youtu", "3\t1.0\t9\t0.001\torg.wikimedia.commons"]),
        "host")
    assert sorted(r["name"] for r in hosts.collect()) == ["commons.wikimedia.org", "youtu.be", "youtube.com"]
    assert "n_hosts" not in hosts.columns and host_report["skipped"] == {}
    with pytest.raises(WebgraphError, match="not one domain rank line"):
        read_ranks(spark, str(tmp_path / "host-ranks.txt.gz"), "domain")  # a host file given as domains


def test_publish_adds_common_crawl_ranks_saturated_in_file_order(spark, sample_pipeline, sample_published, tmp_path):
    root, catalog = sample_pipeline["root"], sample_pipeline["catalog"]
    with open(catalog, newline="", encoding="utf-8") as handle:
        landing = [normalize(r["foreign_landing_url"]) for r in csv.DictReader(handle) if r["foreign_landing_url"]]
    domains = sorted({icann_domain(host_of(u)) for u in landing})
    hosts = sorted({host_of(u).removeprefix("www.") for u in landing})
    assert len(domains) >= 3
    left_out = domains[-1]  # not in the file: null and counted, never zero
    reverse = lambda name: ".".join(reversed(name.split(".")))  # noqa: E731
    domain_file = _gz(tmp_path / "domain-ranks.txt.gz", [DOMAIN_HEADER] + [
        f"{i + 1}\t{1000.0 - i}\t{i + 1}\t{0.01 / (i + 1)}\t{reverse(d)}\t3" for i, d in enumerate(domains[:-1])])
    host_file = _gz(tmp_path / "host-ranks.txt.gz", [HOST_HEADER] + [
        f"{i + 1}\t{50.0 - i}\t{i + 1}\t{0.2 / (i + 1)}\t{reverse(h)}" for i, h in enumerate(hosts)])
    report = run_publish(spark, catalog, str(root / "rank"), str(root / "popularity"), str(tmp_path / "table"),
                         cc_domain_ranks=domain_file, cc_host_ranks=host_file)
    rows = table(spark, tmp_path / "table", "authority").collect()
    keys = {r["identifier"]: r for r in table(spark, sample_published["root"] / "table", "authority").collect()}
    assert set(keys) == {r["identifier"] for r in rows}  # the same rows as without the files
    by_domain = {}
    for row in rows:
        assert row["score"] == keys[row["identifier"]]["score"]  # Common Crawl's ranks inform; the score is ours
    with open(catalog, newline="", encoding="utf-8") as handle:
        landing_of = {r["identifier"]: r["foreign_landing_url"] for r in csv.DictReader(handle)}
    for row in rows:
        url = landing_of.get(row["identifier"])
        domain = icann_domain(host_of(normalize(url))) if url else None
        if domain is None or domain == left_out:
            assert row["cc_domain_pagerank"] is None and row["cc_domain_harmonic"] is None
        else:
            assert 0 < row["cc_domain_pagerank"] < 1 and 0 < row["cc_domain_harmonic"] < 1
            by_domain[domain] = (row["cc_domain_pagerank"], row["cc_domain_harmonic"])
        if url:
            assert 0 < row["cc_host_pagerank"] < 1
    ordered = [by_domain[d] for d in domains[:-1] if d in by_domain]  # the file's order: pagerank falls
    assert len(ordered) >= 2 and ordered == sorted(ordered, reverse=True)
    cc = report["cc_webgraph"]
    assert cc["domain"]["lines"] == len(domains) - 1 and cc["host"]["lines"] == len(hosts)
    with_left_out = sum(1 for r in rows if landing_of.get(r["identifier"])
                        and icann_domain(host_of(normalize(landing_of[r["identifier"]]))) == left_out)
    assert cc["domain"]["not_in_file"] == with_left_out > 0 and cc["host"]["not_in_file"] == 0
    assert report["saturation"]["cc_domain_pagerank"]["constant"] > 0


def test_our_ranks_compared_with_common_crawls(spark, tmp_path):
    from scipy.stats import spearmanr

    from imagerank.graph.cc_webgraph import compare

    names = [f"site{i:03d}.org" for i in range(150)]
    ours = spark.createDataFrame([(n, 1.0 / (i + 1), float(300 - i)) for i, n in enumerate(names)] +
                                 [("only-ours.org", 0.5, 1.0)], "domain string, pagerank double, harmonic_centrality double")
    # Common Crawl's order: ours with the first 20 names reversed, a name we lack, one line broken
    theirs_pr = {n: 1.0 / (i + 1) for i, n in enumerate(list(reversed(names[:20])) + names[20:])}
    lines = [DOMAIN_HEADER] + [f"{i + 1}\t{float(i % 7)}\t{i + 1}\t{theirs_pr[n]}\t{'.'.join(reversed(n.split('.')))}\t1"
                               for i, n in enumerate(names)] + ["1\t1.0\t1\t0.9\torg.only-theirs\t1", "broken"]
    theirs, _ = read_ranks(spark, _gz(tmp_path / "d.txt.gz", lines), "domain")
    result = compare(ours, theirs, "domain")
    assert result["shared"] == 150
    expected = spearmanr([1.0 / (i + 1) for i in range(150)], [theirs_pr[n] for n in names]).correlation
    assert result["pagerank"]["spearman"] == pytest.approx(expected, abs=1e-4) and result["pagerank"]["pairs"] == 150
    assert result["pagerank"]["top"] == 100 and result["pagerank"]["top_overlap"] == 1.0  # the same 100, reordered
    harmonic = spearmanr([300 - i for i in range(150)], [float(i % 7) for i in range(150)]).correlation
    assert result["harmonic"]["spearman"] == pytest.approx(harmonic, abs=1e-4)


@pytest.mark.slow
def test_rank_reports_the_comparison(spark, sample_pipeline, tmp_path):
    from imagerank.graph.rank import RankOptions, run_rank

    graph = sample_pipeline["root"] / "graph"
    domains = sorted(r["domain"] for r in table(spark, sample_pipeline["root"] / "rank", "domain_rank").collect())
    hosts = sorted(r["host"] for r in table(spark, sample_pipeline["root"] / "rank", "host_rank").collect())
    reverse = lambda name: ".".join(reversed(name.split(".")))  # noqa: E731
    domain_file = _gz(tmp_path / "d.txt.gz", [DOMAIN_HEADER] + [f"{i}\t1.0\t{i}\t{1.0 / i}\t{reverse(d)}\t1"
                                                                 for i, d in enumerate(domains, 1)])
    host_file = _gz(tmp_path / "h.txt.gz", [HOST_HEADER] + [f"{i}\t1.0\t{i}\t{1.0 / i}\t{reverse(h.removeprefix('www.'))}"
                                                           for i, h in enumerate(hosts, 1)])
    report = run_rank(spark, str(graph), str(tmp_path / "rank"), RankOptions(
        max_iter=5, tol=0.0, trusted_sources=sample_pipeline["rank_report"]["options"]["trusted_sources"],
        cc_domain_ranks=domain_file, cc_host_ranks=host_file))
    cc = report["cc_webgraph"]
    assert cc["domain"]["shared"] == len(domains) and cc["domain"]["file"]["lines"] == len(domains)
    assert cc["host"]["shared"] == len({h.removeprefix("www.") for h in hosts})
    assert -1 <= cc["domain"]["pagerank"]["spearman"] <= 1 and cc["domain"]["pagerank"]["top_overlap"] == 1.0


@pytest.mark.slow
def test_publish_without_a_crawl_scores_from_common_crawls_domain_ranks(spark, sample_pipeline, sample_published,
                                                                       tmp_path):
    root, catalog = sample_pipeline["root"], sample_pipeline["catalog"]
    with open(catalog, newline="", encoding="utf-8") as handle:
        landing_of = {r["identifier"]: r["foreign_landing_url"] for r in csv.DictReader(handle)}
    domains = sorted({icann_domain(host_of(normalize(u))) for u in landing_of.values() if u})
    reverse = lambda name: ".".join(reversed(name.split(".")))  # noqa: E731
    domain_file = _gz(tmp_path / "domain-ranks.txt.gz", [DOMAIN_HEADER] + [
        f"{i + 1}\t{1000.0 - i}\t{i + 1}\t{0.01 / (i + 1)}\t{reverse(d)}\t3" for i, d in enumerate(domains[:-1])])
    rows = table(spark, sample_published["root"] / "table", "authority").collect()
    # the cheap mode: no crawl processed, the domain ranks alone give the site term of the score
    cheap = run_publish(spark, catalog, None, str(root / "popularity"), str(tmp_path / "cheap"),
                        cc_domain_ranks=domain_file, graph=str(root / "graph"))  # a graph, but no crawl ranks
    assert cheap["warnings"] == [] and cheap["crawls"] == [] and cheap["rows_written"] == len(rows)
    cc_pagerank = {d: 0.01 / (i + 1) for i, d in enumerate(domains[:-1])}
    constant = cheap["saturation"]["domain_authority"]["constant"]
    for row in table(spark, tmp_path / "cheap", "authority").collect():
        url = landing_of.get(row["identifier"])
        domain = icann_domain(host_of(normalize(url))) if url else None
        assert row["authority"] is None and row["image_match"] is None and row["landing_match"] is None
        if domain in cc_pagerank:
            assert row["domain_authority"] >= cc_pagerank[domain]  # the landing's, or the file's if larger
            site = row["domain_authority"] / (row["domain_authority"] + constant)
            expected = 1 - (1 - (row["popularity"] or 0.0)) * (1 - 0.5 * site)
            assert row["score"] == pytest.approx(expected) and row["score"] > (row["popularity"] or 0.0)
    with pytest.raises(Exception, match="give --ranks"):
        run_publish(spark, catalog, None, str(root / "popularity"), str(tmp_path / "none"))
    with pytest.raises(WebgraphError, match=r"missing\.txt\.gz: cannot read it"):  # before any work
        run_publish(spark, catalog, None, str(root / "popularity"), str(tmp_path / "none"),
                    cc_domain_ranks=str(tmp_path / "missing.txt.gz"))
