"""What the runs show: statistics (``stats``), the paper's published numbers and the verdict rule
(``published``, ``verdict``), the claims of the paper as tests over seeds (``claims``), the regression
check with its exact part and measured power (``check``, ``exact``, ``check_power``), and memory and
throughput profiles (``profile``, ``throughput``)."""
