"""Stands in for `torchrun -m torchtitan.train` where an exported launch.sh starts a run, so that
the export's hand-overs go through torchtitan 0.3.0's own checkpointer on a CPU.

torchtitan cannot train on a CPU (FlexAttention has no CPU backward, and its Trainer takes the
device to be a GPU), so the forward and backward passes are the one thing replaced: each step
gives every trainable parameter a seeded random gradient. Everything a hand-over depends on is
torchtitan's own, built from the run module as its Trainer builds it: the config through
`ConfigManager`, the model from the config (with its converters) and `init_weights`, the
`OptimizersContainer`, the LR container, the `CheckpointManager` with the Trainer's counters
(`Trainer.state_dict` / `load_state_dict`), `load()` before the first step, `save()` after
every step as `Trainer.train` calls them.

Usage, as launch.sh's `$PYTHON`: `python titan_cpu_run.py -m torch.distributed.run ...
-m torchtitan.train --module MODULE --config config`. Appends one JSON line per run to
`$TITAN_CPU_OUT`: what the checkpointer loaded (digests per model group, the AdamW state), the
counters after the load, the LR of every step, what it saved.
"""

import hashlib
import json
import os
import sys
import zlib

import torch


def digest(tensors) -> str:
    h = hashlib.sha256()
    for name, t in sorted(tensors):
        h.update(name.encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def model_groups(ck, groups) -> dict:
    """Digests of the model state the checkpointer saves and loads, per group."""
    sd = ck.states["model"].state_dict()
    return {g: digest((k, v) for k, v in sd.items() if sel(k)) for g, sel in groups.items()}


def optimizer_groups(opts, groups) -> dict:
    """The AdamW state of `opts` as its container flattens it (`state.FQN.NAME`): a digest of
    the moments per group, whether they are all zero, and the step counts. An optimizer that
    holds no state yet is read as such: its `state_dict()` would first create the state with a
    zero-LR step (`init_optim_state`), which counts as an AdamW step."""
    if not any(o.state for o in opts.optimizers):
        return {g: {"moments": digest([]), "count": 0, "zero": True, "steps": []} for g in groups}
    sd = opts.state_dict()
    out = {}
    for g, sel in groups.items():
        moments, steps = [], set()
        for k, v in sd.items():
            if not k.startswith("state."):
                continue
            fqn, name = k[len("state.") :].rsplit(".", 1)
            if not sel(fqn):
                continue
            if name == "step":
                steps.add(float(v))
            else:
                moments.append((k, v))
        out[g] = {
            "moments": digest(moments),
            "count": len(moments),
            "zero": all(not v.any() for _, v in moments),
            "steps": sorted(steps),
        }
    return out


class TrainState:
    """The Trainer's checkpointed counters, saved and loaded by the Trainer's own methods."""

    def __init__(self) -> None:
        self.step = 0
        self.ntokens_seen = 0


def main(argv: list[str]) -> None:
    module = argv[argv.index("--module") + 1]
    # The tensors are small: one thread is faster than two that wait on each other, and
    # 50x faster when another process holds the second core.
    torch.set_num_threads(1)
    from torchtitan.config.manager import ConfigManager
    from torchtitan.trainer import Trainer

    import pipelang_titan as pt

    TrainState.state_dict = Trainer.state_dict
    TrainState.load_state_dict = Trainer.load_state_dict

    cfg = ConfigManager().parse_args(["--module", module, "--config", "config"])
    torch.manual_seed(cfg.debug.seed or 0)
    mc = cfg.model_spec.model
    mc.update_from_config(config=cfg)
    model = mc.build()
    model.init_weights(buffer_device=None)
    opts = cfg.optimizer.build(model_parts=[model])
    scheds = cfg.lr_scheduler.build(optimizers=opts, training_steps=cfg.training.steps)
    state = TrainState()
    ck = cfg.checkpoint.build(
        dataloader=None,
        model_parts=[model],
        optimizers=opts,
        lr_schedulers=scheds,
        states={"train_state": state},
        sd_adapter=None,
        base_folder=cfg.dump_folder,
    )
    fresh = model_groups(ck, pt.GROUPS)
    loaded = ck.load(step=cfg.checkpoint.load_step)
    line = {
        "module": module,
        "loaded": loaded,
        "fresh": fresh,
        "model_after_load": model_groups(ck, pt.GROUPS),
        "optimizer_after_load": optimizer_groups(opts, pt.GROUPS),
        "step_after_load": state.step,
        "scheduler_epoch_after_load": scheds.schedulers[0].last_epoch,
    }
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(zlib.crc32(module.encode()))
    inner = next(iter(opts))
    lrs = []
    steps = cfg.training.steps
    while state.step < steps:
        state.step += 1
        opts.zero_grad()
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen) * 1e-2
        torch.nn.utils.clip_grad_norm_(params, cfg.training.max_norm)
        opts.step()
        lrs.append(inner.param_groups[0]["lr"])
        scheds.step()
        state.ntokens_seen += cfg.training.global_batch_size * cfg.training.seq_len
        ck.save(state.step, last_step=state.step == steps)
    ck.close()
    line.update(
        lrs=lrs,
        saved_model=model_groups(ck, pt.GROUPS),
        saved_optimizer=optimizer_groups(opts, pt.GROUPS),
        final_checkpoint=os.path.isfile(
            os.path.join(pt.final_checkpoint(os.path.relpath(cfg.dump_folder, pt.EXPORT), steps), ".metadata")
        ),
    )
    with open(os.environ["TITAN_CPU_OUT"], "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
