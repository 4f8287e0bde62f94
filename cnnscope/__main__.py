"""``python -m cnnscope`` runs the CLI."""

from cnnscope.cli.main import run

run()
