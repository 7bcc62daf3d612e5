"""The HTTP API: thin routes over the ingest service and the projection views."""
