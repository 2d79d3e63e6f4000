"""Training, evaluation and the MLflow registry for both targets."""
