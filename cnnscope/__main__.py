"""``python -m cnnscope`` runs the CLI."""

from cnnscope.cli.main import run

# Guarded: ``bench --ddp`` starts its ranks with the "spawn" method, which imports the
# parent's main module in every child; unguarded, each rank would run the CLI again.
if __name__ == "__main__":
    run()
