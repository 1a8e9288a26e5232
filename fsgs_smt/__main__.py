"""python -m fsgs_smt."""

from fsgs_smt.cli import main

main()
