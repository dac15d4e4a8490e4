"""`python -m fastdeit ...` (what torchrun runs)."""

from fastdeit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
