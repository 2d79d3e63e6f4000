"""Prefect flows (thin glue over the domain packages) and the command line."""
