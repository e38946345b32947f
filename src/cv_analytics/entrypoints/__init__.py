"""Entry points: the command line (and, later, the Lambda handlers and the web app), over the wiring."""
