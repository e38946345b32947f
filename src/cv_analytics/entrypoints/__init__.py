"""Entry points over the wiring: the command line (`cli`), the Lambda handlers (`aws_lambda`) and the web app to come."""
