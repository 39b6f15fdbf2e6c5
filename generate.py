"""The original command: python generate.py --dataroot ... --name ... --results_dir ... --eval"""

from affinegan.cli import script_main

if __name__ == "__main__":
    raise SystemExit(script_main("generate.py"))
