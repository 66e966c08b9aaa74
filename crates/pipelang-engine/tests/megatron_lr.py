"""Drives megatron-core's own OptimizerParamScheduler through every iteration of every run of
a `pipe export --engine megatron` directory, the way Megatron-LM core_v0.16.1 does:

- each run's flags are the ones its train.sh hands Megatron-LM (`PIPE_PRINT_ARGS=1`);
- the scheduler is built as `training.get_optimizer_param_scheduler` builds it for
  sample-based training (`--train-samples`), over a real torch AdamW whose parameter groups
  carry `max_lr` / `min_lr` as `megatron.core.optimizer._get_param_groups` sets them;
- a checkpoint is loaded as `checkpointing.load_checkpoint` does: `--pretrained-checkpoint`
  with an empty `--load` becomes `--finetune` (iteration 0, nothing but weights);
  otherwise iteration and consumed samples come back, the optimizer's state dict (its
  parameter groups with the stored LR bounds) and the scheduler's, with the override flags;
- the training loop runs `while iteration < train_samples // global_batch`, reads the LR the
  optimizer steps with, then `scheduler.step(increment=global_batch)`, and stops at
  `--exit-interval`; the run's checkpoint is saved with torch.save and loaded by the next run.

Usage: python megatron_lr.py EXPORT_DIR OUT.jsonl [--drop FLAG]; one JSON line per run: its
name, the LR of each iteration, the iteration and samples it started at, and the rotary
frequencies megatron-core's RotaryEmbedding computes from the run's flags. `--drop FLAG` removes
a flag from every run (the tests show what the export's flags are there for).
"""

import copy
import json
import os
import subprocess
import sys

import torch
from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler


DROP = []


def flags(train_sh, env):
    out = subprocess.run(
        ["bash", train_sh],
        env={**os.environ, **env, "PIPE_PRINT_ARGS": "1"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # One element of the script's ARGS array per line, as Megatron-LM's argv gets them.
    argv = [x for x in out.splitlines() if x not in DROP]
    args = {}
    i = 0
    while i < len(argv):
        name = argv[i]
        assert name.startswith("--"), name
        vals = []
        i += 1
        while i < len(argv) and not argv[i].startswith("--"):
            vals.append(argv[i])
            i += 1
        key = name[2:].replace("-", "_")
        args[key] = vals[0] if len(vals) == 1 else (vals or True)
    return args


def has_checkpoint(d):
    return d is not None and os.path.exists(os.path.join(d, "harness_checkpoint.pt"))


def run(train_sh, env):
    a = flags(train_sh, env)
    gbs = int(a["global_batch_size"])
    train_samples = int(a["train_samples"])
    assert "train_iters" not in a and "lr_decay_iters" not in a and "lr_warmup_iters" not in a
    # training.get_optimizer_param_scheduler, sample-based branch.
    train_iters = train_samples // gbs
    decay = int(a["lr_decay_samples"]) if "lr_decay_samples" in a else train_samples
    if "lr_warmup_fraction" in a:
        warmup = float(a["lr_warmup_fraction"]) * decay
    else:
        warmup = int(a.get("lr_warmup_samples", 0))
    lr, min_lr = float(a["lr"]), float(a.get("min_lr", 0.0))
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = torch.optim.AdamW(
        [{"params": params, "max_lr": lr, "min_lr": min_lr, "default_config": True}], lr=lr
    )
    wd = float(a.get("weight_decay", 0.01))
    override = a.get("override_opt_param_scheduler") is True
    use_ckpt = a.get("use_checkpoint_opt_param_scheduler") is True
    sched = OptimizerParamScheduler(
        optimizer,
        init_lr=float(a.get("lr_warmup_init", 0.0)),
        max_lr=lr,
        min_lr=min_lr,
        lr_warmup_steps=warmup,
        lr_decay_steps=decay,
        lr_decay_style=a.get("lr_decay_style", "linear"),
        start_wd=wd,
        end_wd=wd,
        wd_incr_steps=train_samples,
        wd_incr_style="constant",
        use_checkpoint_opt_param_scheduler=use_ckpt,
        override_opt_param_scheduler=override,
        wsd_decay_steps=int(a["lr_wsd_decay_samples"]) if "lr_wsd_decay_samples" in a else None,
        lr_wsd_decay_style=a.get("lr_wsd_decay_style", "exponential"),
    )
    # checkpointing.load_checkpoint (core_v0.16.1).
    load = a["load"]
    finetune = a.get("finetune") is True
    pretrained = a.get("pretrained_checkpoint")
    if pretrained is not None and not has_checkpoint(load):
        load = pretrained
        assert has_checkpoint(load), f"no checkpoint in {load}"
        finetune = True
    iteration, consumed = 0, 0
    if has_checkpoint(load):
        ck = torch.load(os.path.join(load, "harness_checkpoint.pt"), weights_only=False)
        if not finetune:
            iteration, consumed = ck["iteration"], ck["consumed_train_samples"]
        if not finetune and a.get("no_load_optim") is not True:
            optimizer.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["opt_param_scheduler"])
    start = (iteration, consumed)
    exit_interval = int(a["exit_interval"]) if "exit_interval" in a else None
    lrs = []
    while iteration < train_iters:
        lrs.append(optimizer.param_groups[0]["lr"])
        iteration += 1
        consumed += gbs
        sched.step(increment=gbs)
        if exit_interval and iteration % exit_interval == 0:
            break
    save = a["save"]
    os.makedirs(save, exist_ok=True)
    torch.save(
        {
            "iteration": iteration,
            "consumed_train_samples": consumed,
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "opt_param_scheduler": sched.state_dict(),
        },
        os.path.join(save, "harness_checkpoint.pt"),
    )
    return {
        "lrs": lrs,
        "start_iteration": start[0],
        "start_samples": start[1],
        "rope_freqs": rope_freqs(a),
    }


def rope_freqs(a):
    """The frequencies megatron-core's RotaryEmbedding rotates with, built from the run's
    flags as Megatron-LM's model provider passes them (`rotary_base`, `rope_scaling`,
    `rope_scaling_factor`, `seq_len_interpolation_factor`): the angles of position 1, from the
    method its `forward` calls (`forward` itself needs CUDA)."""
    from megatron.core.models.common.embeddings.rotary_pos_embedding import RotaryEmbedding

    heads = int(a["num_attention_heads"])
    kv = int(a.get("kv_channels", int(a["hidden_size"]) // heads))
    interp = a.get("rotary_seq_len_interpolation_factor")
    rope = RotaryEmbedding(
        kv_channels=kv,
        rotary_percent=float(a.get("rotary_percent", 1.0)),
        rotary_base=int(a.get("rotary_base", 10000)),
        rope_scaling=a.get("use_rope_scaling") is True,
        rope_scaling_factor=float(a.get("rope_scaling_factor", 8.0)),
        seq_len_interpolation_factor=int(interp) if interp is not None else None,
        use_cpu_initialization=True,
    )
    # What `forward` rotates with before it moves to CUDA: [positions, pairs] angles.
    return rope.get_freqs_non_repeated(2)[1].tolist()


def main():
    export, out = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 4 and sys.argv[3] == "--drop":
        DROP.append(sys.argv[4])
    runs = sorted(os.listdir(os.path.join(export, "runs")))
    with open(out, "w") as f:
        for r in runs:
            res = run(os.path.join(export, "runs", r, "train.sh"), {})
            res["run"] = r.split("-", 1)[1]
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
