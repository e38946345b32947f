"""Entry points: the programs over the library (the Lambda handlers; the CLI and the web app to come)."""
