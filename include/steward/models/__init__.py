"""Models: training on the window, the gate's paired test and its kept fit, the shadow period, the MLflow
registry, the never-retrained and periodic-refit baselines, model cards, fairness, explanations, stored
predictions and rollback."""
