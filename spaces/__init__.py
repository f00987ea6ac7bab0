"""Search spaces: operations, cell topologies, supernets, genotypes and evaluation networks."""
