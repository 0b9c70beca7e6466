"""The analysis layer: pure functions of a results frame: statistics, feasibility, plots and the report."""
