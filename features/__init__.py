"""Data contract, community simulator, point-in-time features and labels.

Plain functions only: nothing here imports Prefect or MLflow, and nothing runs at import.
"""
