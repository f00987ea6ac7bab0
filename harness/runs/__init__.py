"""A run and its folder: the folder's layout and JSON schema (``layout``), atomic writes and the one
hardened JSON reader (``storage``), results with provenance (``results``), reading and status of run
folders (``read``, ``status``), the spec fields a run changes from its defaults (``settings``), the run
itself with checkpoints and resume (``run``), local and Slurm executors (``executors``) and TensorBoard
logging (``tblog``)."""
