"""Thin typer commands: resolve -> build -> analyze -> render. No arithmetic here."""
