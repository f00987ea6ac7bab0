"""Seconds per search iteration and bytes saved for backward, per method, at the smoke and Table 7 shapes.

One iteration is ``method.step(train_batch, val_batch)`` in S0 (Algorithm 1 for ROME: K samples for
the architecture, K for the weights; one each for the others). Its saved bytes are those of its
largest forward graph, measured in the (untimed) warm-up step.
"""

from __future__ import annotations

import pytest
import torch
from support import METHODS, SHAPES, STEP_BYTES, k_of, make_method, method_tensors, saved_bytes_per_pass


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("name", METHODS)
def test_search_step(benchmark, name: str, shape_name: str) -> None:
    shape = SHAPES[shape_name]
    method = make_method(name, shape)
    train, val = shape.batch_data(0), shape.batch_data(1)
    per_pass = saved_bytes_per_pass(lambda: method.step(train, val), method_tensors(method))  # also warm-up
    STEP_BYTES[(name, shape_name)] = max(per_pass)
    benchmark.extra_info.update(
        method=name, options=method.options, space="s0", shape=shape_name, batch=shape.batch,
        channels=shape.channels, layers=shape.layers, image_size=shape.image_size, K=k_of(method),
        forward_passes=len(per_pass), saved_bytes=max(per_pass), saved_bytes_per_pass=per_pass,
        threads=torch.get_num_threads())
    stats = benchmark.pedantic(method.step, args=(train, val), rounds=shape.rounds, iterations=1)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert len(per_pass) == 2 * k_of(method)  # one graph per sample: K for alpha, K for theta
