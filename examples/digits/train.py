"""Train the digits CNN on the train split of a suite's dataset and write the suite's `weights:` file.

    .venv/bin/python examples/digits/train.py                     # suites/digits.yaml, ~10 s on a laptop CPU
    .venv/bin/python examples/digits/train.py --suite my.yaml --epochs 5

The split is the one qbench itself computes from the suite (same dataset spec, same seed), so the
eval split the accuracy is measured on is never trained on. The weights file is not committed
(examples/**/*.pt is git-ignored); tests regenerate it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # model.py beside this file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=HERE.parent.parent / "suites" / "digits.yaml")
    parser.add_argument("--model", default="digits_cnn", help="the suite's model to train (its dataset and weights)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="a model this small trains fastest on one thread")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from model import digits_cnn
    from qbench.datasets import load_dataset, split_dataset
    from qbench.datasets.batches import fit_to_inputs, training_batches
    from qbench.pipeline.resolve import resolve_paths
    from qbench.suite.loader import load_suite

    loaded = resolve_paths(load_suite(args.suite))  # schema only: the full check would miss the weights we are about to write
    spec = next((m for m in loaded.suite.models if m.name == args.model), None)
    if spec is None or spec.dataset is None or spec.weights is None:
        parser.error(f"{args.suite} has no model {args.model!r} with both `dataset:` and `weights:`")
    dataset = next((d for d in loaded.suite.datasets if d.name == spec.dataset), None)
    if dataset is None:
        parser.error(f"{args.suite}: model {args.model!r} names dataset {spec.dataset!r}, which is not in `datasets:`")
    splits = split_dataset(load_dataset(dataset), dataset, needs=("train", "eval"))
    train = fit_to_inputs(splits.train, spec.inputs, spec.name)
    evaluation = fit_to_inputs(splits.eval, spec.inputs, spec.name)

    torch.manual_seed(args.seed)
    model = digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        total, n = 0.0, 0
        for (x,), y in training_batches(train, args.batch_size, gen):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(y), n + len(y)
        sched.step()
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / n:.4f}", flush=True)
    model.eval()
    with torch.no_grad():
        top1 = (model(evaluation.inputs[0]).argmax(1) == evaluation.labels).float().mean().item()
    out = Path(spec.weights).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    print(f"eval top-1 {top1:.4f} on {len(evaluation)} samples (eager fp32); weights: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
