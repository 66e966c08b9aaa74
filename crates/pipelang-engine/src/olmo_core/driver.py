"""One engine run of a pipelang plan, on OLMo-core 3.0 (written by `pipe export` / `pipe run
--engine olmo-core`; rerunnable by hand).

    torchrun --nproc-per-node N driver.py runs/NN-NAME/config.json    # train the run
    python driver.py --check OUT.jsonl runs/*/config.json              # build, count, step the LR

The config says everything; nothing here computes a schedule. The LR comes from the config's
`scheduler`: OLMo-core's ComposableScheduler where it is exact, else `pipelang_curve` (below),
which evaluates the plan's own pieces. Both are shifted by one step, because OLMo-core sets a
step's LR after adding that step's tokens. Each run starts its step counter and data position
at zero (trainer state is never loaded: a new dataset would fail its fingerprint check), and its
save folder is its own, so a checkpoint left there by an earlier try is this run's own.
"""

import argparse
import bisect
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List

import torch

from olmo_core.data import NumpyDataLoaderConfig, NumpyFSLDatasetConfig, TokenizerConfig
from olmo_core.data.source_mixture import (
    SourceMixtureConfig,
    SourceMixtureDatasetConfig,
    SourceMixtureList,
)
import olmo_core.nn.rope as olmo_rope
from olmo_core.nn.feed_forward import FeedForwardConfig
from olmo_core.nn.transformer import TransformerBlockType, TransformerConfig
from olmo_core.optim import AdamWConfig
from olmo_core.optim.scheduler import (
    ComposableScheduler,
    ComposableSchedulerStage,
    Scheduler,
    SchedulerUnits,
)
from olmo_core.train import Duration, TrainerConfig, prepare_training_environment
from olmo_core.train import teardown_training_environment
from olmo_core.train.callbacks import Callback, CheckpointerCallback
from olmo_core.train.train_module import TransformerTrainModuleConfig


def _piece_at(piece: Dict[str, Any], pos: float) -> float:
    """pipelang's `lr::Piece::at` (docs/language.md, `schedules[].curve`)."""
    length = piece["end"] - piece["start"]
    p = 1.0 if length <= 0 else min(max((pos - piece["start"]) / length, 0.0), 1.0)
    s = piece["shape"]
    kind = s["kind"]
    if kind == "linear":
        return s["from"] + (s["to"] - s["from"]) * p
    if kind == "cosine":
        return s["to"] + (s["from"] - s["to"]) * (1 + math.cos(math.pi * p)) / 2
    if kind == "cosine_part":
        return s["to"] + (s["from"] - s["to"]) * (1 + math.cos(math.pi * p * s["part"])) / 2
    if kind == "sqrt":
        return s["from"] - (s["from"] - s["to"]) * math.sqrt(p)
    if kind == "exponential":
        return s["from"] * 2.0 ** (-p * s["halvings"])
    raise ValueError(f"unknown LR piece shape {kind!r}")


@Scheduler.register("pipelang_curve")
@dataclass
class PipelangCurve(Scheduler):
    """The plan's LR pieces at `offset + current - shift` tokens of the schedule's span."""

    pieces: List[Dict[str, Any]] = field(default_factory=list)
    offset: float = 0.0
    shift: int = 0
    span: float = 0.0

    def get_lr(self, initial_lr, current: int, t_max: int):
        del initial_lr, t_max
        x = min(max(self.offset + current - self.shift, 0.0), self.span)
        i = next((j for j, p in enumerate(self.pieces) if p["end"] > x), len(self.pieces) - 1)
        return _piece_at(self.pieces[i], x)


def build_scheduler(cfg: Dict[str, Any]) -> Scheduler:
    s = cfg["scheduler"]
    if s["kind"] == "composable":
        return ComposableScheduler(
            units=SchedulerUnits.tokens,
            stages=[
                ComposableSchedulerStage(
                    duration=st["duration"],
                    shape=st["shape"],
                    start_lr=st["start_lr"],
                    end_lr=st["end_lr"],
                )
                for st in s["stages"]
            ],
        )
    return PipelangCurve(
        units=SchedulerUnits.tokens,
        pieces=s["pieces"],
        offset=s["offset"],
        shift=s["shift"],
        span=s["span"],
    )


def rope_scaling(cfg: Dict[str, Any]):
    """The run's RoPE scaling as OLMo-core's config class (pipe export maps the fields)."""
    s = cfg.get("rope_scaling")
    if s is None:
        return None
    fields = {k: v for k, v in s.items() if k != "class"}
    return getattr(olmo_rope, s["class"])(**fields)


def with_scaling(config: TransformerConfig, cfg: Dict[str, Any]) -> TransformerConfig:
    scaling = rope_scaling(cfg)
    if scaling is not None:
        config.block.sequence_mixer.rope.scaling = scaling
    return config


def build_model_config(cfg: Dict[str, Any]) -> TransformerConfig:
    m = cfg["model"]
    # pipelang's decoder: RMSNorm, RoPE, SwiGLU of `mlp_hidden`, no biases; grouped-query
    # attention, QK-norm per head (one gain shared by the heads) and a tied head as declared.
    common = dict(
        d_model=m["d_model"],
        vocab_size=m["vocab"],
        n_layers=m["layers"],
        n_heads=m["heads"],
        n_kv_heads=m["kv_heads"] if m["kv_heads"] != m["heads"] else None,
        qk_norm=m["qk_norm"],
        use_head_qk_norm=m["qk_norm"],
        rope_theta=cfg["rope_theta"],
        tie_word_embeddings=m["tie_embeddings"],
    )
    if not m["experts"]:
        return with_scaling(
            TransformerConfig.llama_like(
                feed_forward=FeedForwardConfig(hidden_size=m["mlp_hidden"], bias=False), **common
            ),
            cfg,
        )
    # A mixture of experts as pipelang's: softmax router, top-k gates renormalised to sum 1,
    # the Switch balance loss at pipelang's weight, no z-loss; shared experts as one MLP
    # `shared x mlp_hidden` wide; the first `dense_layers` blocks dense.
    shared = m["shared_experts"] * m["mlp_hidden"]
    config = TransformerConfig.llama_like_moe(
        num_experts=m["experts"],
        top_k=m["active_experts"],
        expert_hidden_size=m["mlp_hidden"],
        shared_expert_hidden_size=shared or None,
        lb_loss_weight=cfg["moe_balance_weight"],
        z_loss_weight=None,
        **common,
    )
    config.block.feed_forward_moe.router.normalize_expert_weights = 1.0
    # Before the dense blocks are copied from it, so that they carry the scaling too.
    config = with_scaling(config, cfg)
    if m["dense_layers"]:
        dense = config.block.copy()
        dense.name = TransformerBlockType.default
        dense.feed_forward_moe = None
        dense.feed_forward = FeedForwardConfig(hidden_size=m["mlp_hidden"], bias=False)
        config.block_overrides = {i: dense for i in range(m["dense_layers"])}
    return config


def build_optim(cfg: Dict[str, Any]) -> AdamWConfig:
    o = cfg["optimizer"]
    # The scheduler sets every step's LR; this one is only OLMo-core's `initial_lr`.
    return AdamWConfig(
        lr=max(cfg["first_lr"], 1e-12),
        betas=(o["beta1"], o["beta2"]),
        eps=o["eps"],
        weight_decay=o["weight_decay"],
    )


def check(cfg: Dict[str, Any], out: str) -> None:
    """Builds the model on CPU and steps the real scheduler through every step of the run."""
    model = build_model_config(cfg).build(init_device="cpu")
    optim = build_optim(cfg).build(model)
    scheduler = build_scheduler(cfg)

    class Clock:
        global_train_tokens_seen = 0
        max_tokens = cfg["steps"] * cfg["tokens_per_step"]
        max_steps = cfg["steps"]
        global_step = 0

    lrs = []
    group = optim.param_groups[0]
    for k in range(cfg["steps"]):
        # As the trainer does: the step's tokens are counted before the LR is set.
        Clock.global_step = k + 1
        Clock.global_train_tokens_seen = (k + 1) * cfg["tokens_per_step"]
        lrs.append(float(scheduler.set_lr(group, Clock)))
    rope = model.blocks["0"].attention.rope
    # What the model's attention rotates with: the cosines of the last block at a few
    # positions (YaRN's attention factor included), for the test against pipelang's own.
    cos = None
    if rope is not None:
        blk = model.blocks[str(len(model.blocks) - 1)].attention.rope
        half = blk.rotary_dim // 2
        bufs = blk.get_buffers(8, torch.device("cpu"))
        cos = [[float(x) for x in bufs.pos_cos[p, :half]] for p in (1, 7)]
    with open(out, "a") as f:
        line = {
            "run": cfg["run"],
            "params": model.num_params,
            "rope_theta": rope.theta if rope is not None else None,
            "rope_scaling": repr(rope.scaling) if rope is not None else None,
            "rope_cos": cos,
            "lrs": lrs,
        }
        f.write(json.dumps(line) + "\n")


class StepLog(Callback):
    """Every step as one JSON line: what the engine ran (pipe turns it into metrics.jsonl)."""

    def __init__(self, path: str, cfg: Dict[str, Any]):
        self.path = path
        self.cfg = cfg
        self.seq_len = None
        self.batch = None
        self.rope_base = None
        self.sources: Dict[str, int] = {}
        self.names = [s["name"] for s in cfg["data"]["sources"]]
        # Per token array of the dataset: its first instance index and its source.
        self.array_starts: List[int] = []
        self.array_source: List[int] = []

    def pre_train(self):
        rope = self.trainer.train_module.model.blocks["0"].attention.rope
        self.rope_base = rope.theta if rope is not None else None
        ds = self.trainer.data_loader.dataset
        # `pipe prepare-data` writes a source's arrays as data/SOURCE/part-NNNNN.npy.
        by_dir = {n: i for i, n in enumerate(self.names)}
        self.array_starts = [start for start, _ in ds.offsets]
        self.array_source = [by_dir[os.path.basename(os.path.dirname(str(p)))] for p in ds.paths]

    def pre_step(self, batch: Dict[str, Any]):
        ids = batch["input_ids"]
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        self.batch = ids.shape[0] * world
        self.seq_len = ids.shape[1]
        # Sequences drawn from each source in this step, over all ranks: the instance index
        # names its array, the array its source.
        counts = torch.zeros(len(self.names), dtype=torch.int64)
        for i in batch["index"].tolist():
            counts[self.array_source[bisect.bisect_right(self.array_starts, i) - 1]] += 1
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        self.sources = dict(zip(self.names, counts.tolist()))

    def log_metrics(self, step: int, metrics: Dict[str, float]):
        # Rank 0 writes; metrics arrive once reduced over ranks. Step 0, or a step without a loss, is the
        # trainer's bookkeeping before the first batch.
        if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
            return
        if step < 1 or metrics.get("train/CE loss") is None:
            return
        line = {
            "run": self.cfg["run"],
            "step": step - 1,
            "loss": metrics["train/CE loss"],
            "lr": metrics.get("optim/LR (group 0)"),
            "grad_norm": metrics.get("optim/total grad norm"),
            "seq_len": self.seq_len,
            "batch": self.batch,
            "rope_base": self.rope_base,
            "sources": self.sources,
            "time": time.time(),
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())


def dataset_config(cfg: Dict[str, Any], here: str):
    d = cfg["data"]
    tok = TokenizerConfig(
        vocab_size=cfg["model"]["vocab"],
        eos_token_id=d["eos_token_id"],
        pad_token_id=d["pad_token_id"],
    )
    resolve = lambda p: p if os.path.isabs(p) else os.path.join(here, p)
    sources = d["sources"]
    work_dir = os.path.join(here, "work")
    if len(sources) == 1:
        return NumpyFSLDatasetConfig(
            paths=[resolve(p) for p in sources[0]["paths"]],
            expand_glob=True,
            sequence_length=cfg["seq_len"],
            tokenizer=tok,
            dtype=d["dtype"],
            work_dir=work_dir,
        )
    mix = SourceMixtureDatasetConfig(
        source_list=SourceMixtureList(
            sources=[
                SourceMixtureConfig(
                    source_name=s["name"],
                    target_ratio=s["share"],
                    paths=[resolve(p) for p in s["paths"]],
                    # Small sources repeat rather than starve the mixture (pipe check --data
                    # warns when a recipe reads a source past 4 epochs).
                    max_repetition_ratio=64.0,
                )
                for s in sources
            ]
        ),
        requested_tokens=cfg["steps"] * cfg["tokens_per_step"],
        global_batch_size=cfg["tokens_per_step"],
        seed=cfg["seed"],
        render_tables=False,
    )
    return NumpyFSLDatasetConfig.from_src_mix(
        mix, sequence_length=cfg["seq_len"], tokenizer=tok, dtype=d["dtype"], work_dir=work_dir
    )


def die_with_parent() -> None:
    """A rank dies with the torchrun that started it (and torchrun with pipe): a run killed
    with SIGKILL leaves no orphan rank writing into its folder while it is resumed."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def train(cfg: Dict[str, Any], here: str) -> None:
    die_with_parent()
    if cfg["model"]["experts"] and not torch.cuda.is_available():
        raise SystemExit(
            f"run {cfg['run']}: OLMo-core's mixture-of-experts layers run on CUDA only (their "
            "kernels are Triton's); train this run on a GPU machine, or the stage with `pipe run` "
            "without --engine"
        )
    # gloo alone on CPU (OLMo-core would ask CUDA for a device with "cuda:nccl" in the list).
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    prepare_training_environment(seed=cfg["seed"], backend=backend)
    model = build_model_config(cfg).build(init_device="meta")
    train_module = TransformerTrainModuleConfig(
        rank_microbatch_size=cfg["rank_microbatch_size"] * cfg["seq_len"],
        max_sequence_length=cfg["seq_len"],
        optim=build_optim(cfg),
        scheduler=build_scheduler(cfg),
        # `clip = 0` in the recipe: no clipping (OLMo-core would clip to a norm of 0).
        max_grad_norm=cfg["optimizer"]["clip_norm"] or None,
    ).build(model)
    dataset = dataset_config(cfg, here).build()
    loader = NumpyDataLoaderConfig(
        global_batch_size=cfg["tokens_per_step"], seed=cfg["seed"], work_dir=os.path.join(here, "work")
    ).build(dataset, dp_process_group=train_module.dp_process_group)
    save = os.path.join(here, "checkpoint")
    trainer = (
        TrainerConfig(
            save_folder=save,
            save_overwrite=True,
            max_duration=Duration.steps(cfg["steps"]),
            metrics_collect_interval=1,
            cancel_check_interval=1,
            # Metrics reduced in the step that made them: every step's line is written before
            # the next step, and a background bookkeeping thread cannot stall the run's end
            # (seen on gloo: the last checkpoint waiting on pending reductions for minutes).
            async_bookkeeping=False,
            # No BatchSizeSchedulerCallback: it rescales the LR by sqrt(batch ratio).
        )
        .with_callback(
            "checkpointer",
            CheckpointerCallback(
                save_interval=cfg["checkpoint_every"],
                ephemeral_save_interval=None,
                # Synchronous saves. OLMo-core saves asynchronously whenever the backend can do
                # CPU collectives, which gloo always can. The save then completes on a thread
                # that records a max-reduced metric, at whatever step each rank happens to be
                # on, so the ranks' metric reductions can stop matching: runs hung right after
                # "Checkpoint for step N saved successfully" (2 of 4 on gloo, a loaded machine).
                save_async=False,
            ),
        )
        .with_callback("pipelang", StepLog(os.path.join(here, "steps.jsonl"), cfg))
        .build(train_module, loader)
    )
    # A checkpoint in this run's own folder is an interrupted try of this run: continue it,
    # trainer state included (same dataset). Otherwise start from the run the plan names,
    # weights (and AdamW state when the schedule resumes), never its step counter or data.
    if not trainer.maybe_load_checkpoint():
        init = cfg["init"]
        if init["kind"] == "from":
            trainer.load_checkpoint(
                resolve_checkpoint(os.path.join(here, init["checkpoint"])),
                load_optim_state=init["optimizer"],
                load_trainer_state=False,
            )
    trainer.fit()
    teardown_training_environment()


def resolve_checkpoint(folder: str) -> str:
    """The last step checkpoint a finished run left in its save folder."""
    steps = [d for d in os.listdir(folder) if d.startswith("step") and d[4:].isdigit()]
    if not steps:
        raise SystemExit(f"no checkpoint in {folder}: run the run before this one first")
    return os.path.join(folder, max(steps, key=lambda d: int(d[4:])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="+", help="a run's config.json (several only with --check)")
    ap.add_argument(
        "--check", metavar="OUT", help="build each model and step its LR only; write JSON lines"
    )
    a = ap.parse_args()
    if not a.check and len(a.config) != 1:
        ap.error("one config per training run")
    for path in a.config:
        with open(path) as f:
            cfg = json.load(f)
        if a.check:
            check(cfg, a.check)
        else:
            train(cfg, os.path.dirname(os.path.abspath(path)))


if __name__ == "__main__":
    sys.exit(main())
