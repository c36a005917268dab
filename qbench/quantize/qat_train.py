"""The two QAT loops and their schedule (batch-norm statistics and observers frozen after K steps).

Both return the prepared (fake-quantized) graph in eval mode and a record of the training: losses
first/last/per epoch, steps, and when each freeze happened.
"""

from __future__ import annotations

import time

_BATCH_NORMS = ("aten.batch_norm.default", "aten._native_batch_norm_legit.default")


def set_training(prepared, *, dropout: bool | None = None, batch_norm: bool | None = None) -> None:
    """Switch the exported graph's dropout and batch-norm ops between training and inference by their
    `train`/`training` argument (None leaves that kind alone).

    Not move_exported_model_to_train: in torchao 0.18 its pattern rewrite replaces every dropout with
    p=0.5 whatever the model declared (Dropout(0.2) trains as Dropout(0.5)), which costs a trained
    model several points. Batch norm with training=False normalises with its running statistics and
    stops updating them: that is "frozen statistics", as in the PT2E QAT tutorial.
    """
    for node in prepared.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if dropout is not None and name == "aten.dropout.default" and len(node.args) > 2:
            node.args = (*node.args[:2], dropout, *node.args[3:])
        elif batch_norm is not None and name in _BATCH_NORMS and len(node.args) > 5:
            node.args = (*node.args[:5], batch_norm, *node.args[6:])
    prepared.recompile()


def freeze_bn_stats(prepared) -> None:
    """Batch norm stops updating its statistics; dropout stays as it is."""
    set_training(prepared, batch_norm=False)


def freeze_observers(prepared) -> None:
    from torchao.quantization.pt2e import disable_observer

    prepared.apply(disable_observer)


class _Ticker:
    """Reports progress at most a few times a second (the bar is redrawn from another thread)."""

    def __init__(self, progress):
        self.progress, self.last = progress, 0.0

    def __call__(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last > 0.25:
            self.last = now
            self.progress(text)


def train_on_split(graph, reference, options, data, quantizer):
    """Fine-tune on the dataset's train split in batches of `batch_size` (any size: the graph is
    re-exported with a dynamic batch axis; the .pte is lowered later at the declared batch)."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from qbench.quantize.qat_bn import align_bn_eps

    torch.manual_seed(options.seed)
    train = data.train
    graph, batch_size, note = _graph_for_batch(graph, reference, train, options, data.example[0].shape[0])
    bn_eps_aligned = align_bn_eps(graph)
    prepared = prepare_qat_pt2e(graph, quantizer)
    set_training(prepared, dropout=True, batch_norm=True)
    class_labels = train.has_class_labels
    losses, per_epoch, step, bn_at, obs_at = _train_epochs(prepared, reference, options, data, batch_size, class_labels)
    set_training(prepared, dropout=False, batch_norm=False)  # whatever torchao thinks the mode is
    move_exported_model_to_eval(prepared)
    record = {
        "mode": "labels" if class_labels else "distill-on-train-split",
        "loss": "cross_entropy" if class_labels else "mse_to_fp32",
        "epochs": options.epochs, "steps": step, "batch_size": batch_size, "train_samples": len(train),
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
        "loss_per_epoch": per_epoch, "bn_frozen_at_step": bn_at, "observers_frozen_at_step": obs_at,
        "bn_eps_aligned": bn_eps_aligned,
    }
    if note:
        record["note"] = note
    return prepared, record


def _graph_for_batch(graph, reference, train, options, declared: int):
    """(graph, batch size, note): re-exported with a dynamic batch axis when the training batch differs
    from the declared one; a model that bakes its batch size in trains at the declared batch."""
    batch_size = min(options.batch_size, len(train))
    note = None
    if batch_size != declared:
        try:
            graph = _export_dynamic_batch(reference, train, batch_size)
        except Exception as exc:  # a model that bakes its batch size in: train at the declared batch
            note = f"dynamic batch export failed ({type(exc).__name__}); trained at the declared batch {declared}"
            batch_size = declared
    return graph, batch_size, note


def _train_epochs(prepared, reference, options, data, batch_size: int, class_labels: bool):
    """The training loop: (losses per step, mean loss per epoch, steps, step of the batch-norm freeze,
    step of the observers' freeze)."""
    import torch

    from qbench.datasets.batches import training_batches

    train = data.train
    opt = make_optimizer([p for p in prepared.parameters() if p.requires_grad], options)
    gen = torch.Generator().manual_seed(options.seed)
    tick = _Ticker(data.progress)
    losses, per_epoch, step = [], [], 0
    bn_at = obs_at = None
    for epoch in range(options.epochs):
        epoch_losses = []
        for inputs, labels in training_batches(train, batch_size, gen):
            if bn_at is None and step >= options.freeze_bn_after:
                freeze_bn_stats(prepared)
                bn_at = step
            if obs_at is None and options.freeze_observers_after is not None and step >= options.freeze_observers_after:
                freeze_observers(prepared)
                obs_at = step
            loss = _train_loss(prepared, reference, inputs, labels, data, class_labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            epoch_losses.append(losses[-1])
            step += 1
            tick(f"qat epoch {epoch + 1}/{options.epochs} step {step} loss {losses[-1]:.4f}")
        per_epoch.append(sum(epoch_losses) / max(1, len(epoch_losses)))
        tick(f"qat epoch {epoch + 1}/{options.epochs} done, mean loss {per_epoch[-1]:.4f}", force=True)
    return losses, per_epoch, step, bn_at, obs_at


def _train_loss(prepared, reference, inputs, labels, data, class_labels: bool):
    """Cross-entropy against the labels when the split has class labels, else MSE to the fp32 model's outputs."""
    import torch

    out = _first(prepared(*inputs), data)
    if class_labels:
        return torch.nn.functional.cross_entropy(out, labels.long())
    with torch.no_grad():
        target = _first(reference(*inputs), data)
    return torch.nn.functional.mse_loss(out, target)


def distill(graph, reference, options, data, quantizer):
    """Label-free: match the fp32 model's outputs on the calibration batches for `steps` steps."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from qbench.quantize.qat_bn import align_bn_eps

    torch.manual_seed(options.seed)
    bn_eps_aligned = align_bn_eps(graph)
    prepared = prepare_qat_pt2e(graph, quantizer)
    with torch.no_grad():
        targets = [_first(reference(*batch), data) for batch in data.calibration]
    opt = make_optimizer([p for p in prepared.parameters() if p.requires_grad], options)
    # prepare_qat_pt2e leaves batch norm in training mode; we start in eval (frozen statistics)
    # unless asked to let them adapt for the first `freeze_bn_after` steps.
    move_exported_model_to_eval(prepared)
    # Initialise the fake-quant observers on all calibration data first, as PTQ would: a few steps
    # alone leave their moving averages at the ranges of the first batches.
    with torch.no_grad():
        for batch in data.calibration:
            prepared(*batch)
    tick = _Ticker(data.progress)
    losses, obs_at = [], None
    for step in range(options.steps):
        if step == 0 and options.freeze_bn_after > 0:
            set_training(prepared, dropout=True, batch_norm=True)
        if step == options.freeze_bn_after and step > 0:
            set_training(prepared, dropout=False, batch_norm=False)
        if obs_at is None and options.freeze_observers_after is not None and step >= options.freeze_observers_after:
            freeze_observers(prepared)
            obs_at = step
        i = step % len(data.calibration)
        loss = torch.nn.functional.mse_loss(_first(prepared(*data.calibration[i]), data), targets[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        tick(f"qat distill step {step + 1}/{options.steps} loss {losses[-1]:.4g}")
    set_training(prepared, dropout=False, batch_norm=False)
    move_exported_model_to_eval(prepared)
    return prepared, {
        "mode": "distill", "loss": "mse_to_fp32", "steps": options.steps,
        "loss_first": losses[0], "loss_last": losses[-1],
        "bn_frozen_at_step": options.freeze_bn_after, "observers_frozen_at_step": obs_at,
        "bn_eps_aligned": bn_eps_aligned,
    }


def _export_dynamic_batch(reference, train, batch_size: int):
    import copy

    import torch

    example = tuple(t[:batch_size] for t in train.inputs)
    batch = torch.export.Dim("batch", min=1, max=max(batch_size, len(train)))
    dims = tuple({0: batch} for _ in example)
    return torch.export.export(copy.deepcopy(reference), example, dynamic_shapes=dims).module()


def _first(out, data):
    """The output leaf the loss uses: the suite's `output:` (or the first tensor leaf)."""
    from qbench.models.outputs import select_output

    return select_output(out, data.output)


def make_optimizer(params, options):
    """The optimizer a QatOptions names (adam, or sgd with momentum)."""
    import torch

    if options.optimizer == "adam":
        return torch.optim.Adam(params, lr=options.lr)
    return torch.optim.SGD(params, lr=options.lr, momentum=options.momentum)
