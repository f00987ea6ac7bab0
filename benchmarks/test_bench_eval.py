"""Images per second of the evaluation network: NetworkCIFAR of DARTS_V2 at the smoke shape, training step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from support import SHAPES

from spaces.evalnet import NetworkCIFAR, count_params
from spaces.genotype import KNOWN


def test_eval_train_step(benchmark) -> None:
    shape = SHAPES["smoke"]  # batch 64, 8 channels, 5 cells, 16 x 16
    net = NetworkCIFAR(shape.channels, 10, shape.layers, False, KNOWN["DARTS_V2"], in_channels=3)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    x, y = shape.batch_data(0)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        logits, _ = net(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    loss = benchmark.pedantic(step, rounds=10, iterations=1, warmup_rounds=1)
    mean_s = benchmark.stats.stats.mean
    benchmark.extra_info.update(genotype="DARTS_V2", batch=shape.batch, channels=shape.channels,
                                layers=shape.layers, image_size=shape.image_size, params=count_params(net),
                                images_per_second=shape.batch / mean_s, threads=torch.get_num_threads())
    assert loss == loss  # finite (not NaN)
