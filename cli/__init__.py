"""Command-line interface (installed as ``digitize.cli``; never a top-level ``cli`` package)."""
