"""PageRank of pages, hosts and domains, harmonic centrality of hosts and domains, image authority.

    python jobs/rank.py --graph GRAPH_DIR --output RANK_DIR [--damping 0.85] [--tol 1e-9 | --max-iter N]
        [--engine auto|driver|dataframe|block|graphx|graphframes]

Options: ``--help``; the library call is imagerank.commands ("rank").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("rank", argv)


if __name__ == "__main__":
    sys.exit(main())
