"""One module per CLI verb; ``cli.py`` assembles them. ``common.py`` holds what verbs share;
``generate_console.py`` the progress and summary output of ``generate``."""
