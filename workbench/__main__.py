"""`python -m workbench ...` (also what `torchrun -m workbench retrain ...` runs)."""

from workbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
