from affinegan.img2gif import main

if __name__ == "__main__":
    raise SystemExit(main())
