from affinegan.runtime import wait_passively

if __name__ == "__main__":
    wait_passively()  # before torch loads
    from affinegan.img2gif import main

    raise SystemExit(main())
