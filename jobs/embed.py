"""Signals from the catalog's images: EXIF, text and image embeddings, near-duplicate families.

    python jobs/embed.py --catalog CATALOG --images IMAGES --output SIGNALS_DIR [--text-model M] [--image-backend B]

Options: ``--help``; the library call is imagerank.commands ("embed").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("embed", argv)


if __name__ == "__main__":
    sys.exit(main())
