"""The original command: python img2gif.py --exp_names ... --dataroot ... --results_dir ..."""

from affinegan.cli import script_main

if __name__ == "__main__":
    raise SystemExit(script_main("img2gif.py"))
