"""One module per CLI verb; ``cli.py`` assembles them."""
