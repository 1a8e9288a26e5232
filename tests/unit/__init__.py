"""Unit tests, mirroring fsgs_smt/."""
