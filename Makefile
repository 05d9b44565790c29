# imagerank: `make demo` runs the pipeline on the embedded sample; `make test` runs the tests.
# Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLE := data/sample
DEMO := data/demo

.PHONY: install test demo bench dist clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[graph,test,local]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

$(SAMPLE)/crawl/warc.paths.gz: | $(STAMP)
	$(PY) -m imagerank.sample --output $(SAMPLE)

demo: $(STAMP) $(SAMPLE)/crawl/warc.paths.gz
	$(PY) jobs/extract.py --input $(SAMPLE)/crawl/warc.paths.gz --output $(DEMO)/extract
	$(PY) jobs/build_graph.py --input $(DEMO)/extract --output $(DEMO)/graph
	$(PY) jobs/rank.py --graph $(DEMO)/graph --output $(DEMO)/rank
	$(PY) jobs/popularity.py --catalog $(SAMPLE)/catalog/catalog.csv --output $(DEMO)/popularity
	$(PY) jobs/publish.py --catalog $(SAMPLE)/catalog/catalog.csv --ranks $(DEMO)/rank \
	  --popularity $(DEMO)/popularity --output $(DEMO)/table
	$(PY) -m imagerank.demo $(DEMO)

bench: $(STAMP)
	$(PY) bench/bench_extract.py
	$(PY) bench/bench_pagerank.py

# A zip of the library for spark-submit --py-files on a cluster.
dist: $(STAMP)
	mkdir -p dist && rm -f dist/imagerank.zip
	cd lib && zip -qr ../dist/imagerank.zip imagerank -x '*__pycache__*'
	@echo "dist/imagerank.zip"

clean:
	rm -rf $(DEMO) $(SAMPLE) dist build *.egg-info lib/*.egg-info
