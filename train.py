"""The original command: python train.py --dataroot ... --name ... --checkpoints_dir ..."""

import sys

from affinegan.cli import run, train_main

if __name__ == "__main__":
    raise SystemExit(run(lambda argv: train_main(argv, prog="train.py"), sys.argv[1:]))
