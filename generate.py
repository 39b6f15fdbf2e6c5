"""The original command: python generate.py --dataroot ... --name ... --results_dir ... --eval"""

import sys

from affinegan.runtime import wait_passively

if __name__ == "__main__":
    wait_passively()  # before torch loads
    from affinegan.cli import generate_main, run

    raise SystemExit(run(lambda argv: generate_main(argv, prog="generate.py"), sys.argv[1:]))
