"""The original command: python train.py --dataroot ... --name ... --checkpoints_dir ..."""

from affinegan.cli import script_main

if __name__ == "__main__":
    raise SystemExit(script_main("train.py"))
