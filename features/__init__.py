"""Data contract, point-in-time features and labels (the community simulator is ``simulator``).

Plain functions only: nothing here imports Prefect or MLflow, and nothing runs at import.
"""
