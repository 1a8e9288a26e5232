# SPDX-License-Identifier: MIT
"""Native execution: what this machine offers, and traces run on the real CPU and kernel.

Layer: native. Imports the standard library and the layers below (never a solver or the
terminal); prints nothing.
"""
