"""The original command: python generate.py --dataroot ... --name ... --results_dir ... --eval"""

import sys

from affinegan.cli import generate_main, run

if __name__ == "__main__":
    raise SystemExit(run(lambda argv: generate_main(argv, prog="generate.py"), sys.argv[1:]))
