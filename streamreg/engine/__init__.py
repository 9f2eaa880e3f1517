"""Passes over the data: the mergeable accumulation, the blocks, and the runners that visit them."""
