# SPDX-License-Identifier: MIT
"""Traces: fsgs-trace/1 and other renderings of event traces (layer: traces)."""
