"""The original command: python train.py --dataroot ... --name ... --checkpoints_dir ..."""

import sys

from affinegan.runtime import wait_passively

if __name__ == "__main__":
    wait_passively()  # before torch loads
    from affinegan.cli import run, train_main

    raise SystemExit(run(lambda argv: train_main(argv, prog="train.py"), sys.argv[1:]))
