"""Loss and accuracy by token position: where along the sequence a model breaks.

The evaluation tallies, at every evaluation length of a token-level task
(:mod:`~ablate.results.positions.tally`), the mean loss and accuracy at each position;
the store keeps them in a table of their own (:mod:`~ablate.results.positions.table`),
and :func:`~ablate.results.positions.frame.load_positions` reads them back as a tidy
frame for the report's by-position figure. The package root imports nothing, so
the store reads the table without torch.
"""
