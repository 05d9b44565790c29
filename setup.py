from setuptools import find_packages, setup

EXTRACT = [
    "pyspark>=3.5,<5",
    "pyarrow>=15",
    "pandas>=2.0",
    "fastwarc>=0.15",
    "selectolax>=0.3.21",
    "ada-url>=1.15",
    "publicsuffixlist>=1.0",
    "urllib3>=2.0",
    "boto3>=1.34",
    "pyyaml>=6.0",
    # reference path (and the benchmark baseline)
    "warcio>=1.7",
    "beautifulsoup4>=4.12",
    "lxml>=5.0",
]
GRAPH = ["graphframes-py==0.12.3", "networkx>=3.2", "scipy>=1.11"]
TEST = ["pytest>=8", "moto[server]>=5.0"]

setup(
    name="imagerank",
    version="0.1.0",
    description="Image authority and popularity from Common Crawl, as PySpark jobs",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    python_requires=">=3.10",
    install_requires=EXTRACT,
    extras_require={"graph": GRAPH, "test": TEST, "local": ["pyspark==4.1.4"]},
)
