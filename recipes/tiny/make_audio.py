"""Write the toy source recordings the tiny recipe trains on: python make_audio.py OUT_DIR"""

import sys

from vocalsep.audio.toy import write_toy_sources

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python recipes/tiny/make_audio.py OUT_DIR")
    print(write_toy_sources(sys.argv[1]))
