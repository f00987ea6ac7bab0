"""The ``harness`` command line, the top layer: ``main`` holds the group and run/eval/list/describe,
one module per further sub-command (``check``, ``report``, ``reproduce``, ``status``) and the shared
options and argument parsers in ``common``."""
