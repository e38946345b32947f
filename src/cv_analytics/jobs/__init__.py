"""The jobs engine: job records and their states, the handler registry, the job worker, the result processor, the service the HTTP API and the CLI call."""
