"""Turning recorded runs into the paper's artifacts: Tables 1-7, Fig. 2/3/5 (see ``reports.index``)."""
