"""The computation: the search loop of the paper's Algorithm 1 (``search``), the train/eval step and epoch
of a derived network (``evaluate``) and the numerical-health guard both share (``health``)."""
