"""All stages in one Spark session, from one configuration file (``conf/pipeline.yaml``).

    output_root: data/demo                 # each stage writes output_root/<its folder> unless it names output
    extract: {input: [data/sample/crawl/warc.paths.gz]}
    graph: {}                              # input: the extract output
    rank: {damping: 0.85}
    popularity: {catalog: data/sample/catalog/catalog.csv}
    publish: {}                            # catalog: popularity's; ranks, popularity: the outputs above

A stage's mapping holds its job's long options without the dashes (``max_iter: 20`` is
``--max-iter 20``); the stage's own parser reads them, so the pipeline and the jobs validate alike.
Paths in the file are relative to the working directory, or any URI the jobs take.

``resume``: a stage is skipped when its output holds a committed run made from the runs its inputs
hold now (so a re-run extraction also re-runs what follows it); an unfinished extraction is
continued where it stopped, crawl file by crawl file.
"""

from __future__ import annotations

import time

import yaml

from imagerank import commit, fs
from imagerank.commands import COMMANDS, STAGES, parser_for, summary
from imagerank.progress import say

FOLDERS = {"extract": "extract", "graph": "graph", "rank": "rank", "popularity": "popularity", "publish": "table"}


class PipelineError(ValueError):
    """The pipeline configuration or the stage list is not usable."""


def load_config(spark, path: str) -> dict:
    uri = fs.qualify(spark, path)
    config = yaml.safe_load(fs.read_text(uri)) or {}
    if not isinstance(config, dict):
        raise PipelineError(f"{path}: expected a mapping of stage -> options")
    unknown = set(config) - set(STAGES) - {"output_root"}
    if unknown:
        raise PipelineError(f"{path}: unknown keys {sorted(unknown)}; stages are {list(STAGES)}")
    return config


def stage_options(config: dict) -> dict[str, dict]:
    """Each stage's options, with the outputs of earlier stages filled in as its inputs."""
    root = config.get("output_root")
    options = {name: dict(config.get(name) or {}) for name in STAGES}
    for name in STAGES:
        if "output" not in options[name]:
            if root is None:
                raise PipelineError(f"stage {name} names no output and the file has no output_root")
            options[name]["output"] = fs.join(str(root), FOLDERS[name])
    out = {name: options[name]["output"] for name in STAGES}
    options["graph"].setdefault("input", [out["extract"]])
    options["rank"].setdefault("graph", out["graph"])
    options["publish"].setdefault("ranks", out["rank"])
    options["publish"].setdefault("graph", out["graph"])
    options["publish"].setdefault("popularity", out["popularity"])
    if "catalog" in options["popularity"] and "catalog" not in options["publish"]:  # popularity's catalog, as read
        for key in ("catalog", "catalog_format", "catalog_table"):
            if key in options["popularity"]:
                options["publish"][key] = options["popularity"][key]
    return options


def to_argv(options: dict) -> list[str]:
    """{"max_iter": 20, "input": [a, b], "resume": True} -> --max-iter 20 --input a --input b --resume."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + str(key).replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def up_to_date(output: str) -> bool:
    """A committed run whose recorded inputs are still the committed runs of those inputs."""
    if commit.marker(output) is None:
        return False
    report = commit.read_report(output)
    for entries in report.get("inputs", {}).values():
        for entry in entries:
            current = commit.marker(entry["path"])
            if current is None or current.get("run") != entry["run"]:
                return False
    return True


def run_pipeline(spark, config_path: str, stages: list[str] | None = None, resume: bool = False) -> dict:
    """Run the chosen stages (default: all) in order; returns {stage: summary or "skipped"}."""
    chosen = list(stages or STAGES)
    unknown = [name for name in chosen if name not in STAGES]
    if unknown:
        raise PipelineError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    fs.configure(fs.FsSettings.from_spark(spark))  # before the config is read: it may sit on S3
    options = stage_options(load_config(spark, config_path))
    # parse every chosen stage first: a typo in the last stage fails before the first one runs
    parsed = {}
    for name in chosen:
        if name == "extract" and resume:
            options[name]["resume"] = True
        parsed[name] = parser_for(name, prog=f"pipeline {name}").parse_args(to_argv(options[name]))
    results: dict = {}
    for name in STAGES:
        if name not in chosen:
            continue
        output = fs.qualify(spark, parsed[name].output)
        if resume and up_to_date(output):
            say(name, f"skipped: {output} holds a committed run of the current inputs")
            results[name] = "skipped"
            continue
        say(name, "started")
        started = time.time()
        report = COMMANDS[name].call(spark, parsed[name])
        say(name, f"committed run {report['run']} to {output} in {time.time() - started:.1f} s")
        results[name] = summary(name, report)
    return results
