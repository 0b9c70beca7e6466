"""The results layer: the store (SQLite, one tidy frame) with its schema versions, the tables of
variants, measurement rounds and positions, and the export."""
