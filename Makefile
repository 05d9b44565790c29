# imagerank: `make demo` runs the pipeline on the embedded sample; `make test` runs the tests.
# Both install what they need into .venv first. `make test-spark35` runs the tests on pyspark 3.5
# (the Spark of EMR 7 and Dataproc 2.2/2.3) in .venv35, pinned by requirements/spark35.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV35 := .venv35
PY35 := $(VENV35)/bin/python
STAMP35 := $(VENV35)/.installed
PINS35 := requirements/spark35.txt
SAMPLE := data/sample
DEMO := data/demo

.PHONY: install test test-spark35 demo bench dist clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[graph,test,local]'
	touch $(STAMP)

# setuptools: pyspark 3.5 imports distutils, which Python 3.12 no longer ships
$(STAMP35): setup.py $(PINS35)
	$(PYTHON) -m venv --clear $(VENV35)
	$(PY35) -m pip install --quiet --upgrade pip
	$(PY35) -m pip install --quiet -c $(PINS35) -e '.[graph,test]' setuptools
	touch $(STAMP35)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

test-spark35: $(STAMP35)
	$(PY35) -c "import pyspark; print('pyspark', pyspark.__version__)"
	$(PY35) -m pytest -q tests

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
