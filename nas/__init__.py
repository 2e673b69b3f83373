"""The engine: data, training, cost, robustness, trials, search, Pareto maths and reports."""
