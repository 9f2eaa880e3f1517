"""Where rows come from and where results go: listing, reading, in-memory inputs, atomic writes.

Nothing outside this package opens a data file.
"""
