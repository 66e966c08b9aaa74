"""pipelang's helper for torchtitan 0.3.0, written beside the run modules by
`pipe export --engine torchtitan` (docs/engines.md). Each run's module (`pipelang_runs/rNN_*.py`)
calls `trainer(...)` with that run's numbers; what is here is what torchtitan has no switch for:

- `PlanLR`: the run's LR as the plan has it, the plan's curve pieces evaluated at the step's
  first token. torchtitan's own warm-up is one step ahead (step k runs at (k + 1) / warmup);
  this one runs step k (0-based) at the plan's LR for step k, and sets it on the optimizer
  right before every step, so an optimizer state loaded from the run before cannot carry that
  run's LR into this run's first step.
- `PlanFreeze`: a model converter that freezes the recipe's frozen models (requires_grad off,
  so torchtitan's optimizer never sees them).
- the models from the recipe's dims: a Llama-3-style decoder (dense) or Qwen3-style MoE blocks
  (with shared experts and dense first blocks where the recipe has them), alone for text
  stages, inside torchtitan's Kimi-VL container (MoonViT + projector) for vision stages, with a
  config that shards and counts those blocks as their own family does (`_vision_language`).
- `assemble`: one checkpoint for a run whose models come from several places (earlier runs,
  a skipped stage's weights, a fresh projector); torchtitan loads exactly one and refuses
  missing keys. Where the plan carries the decoder's AdamW state (`--optimizer`), the
  checkpoint holds the run's whole optimizer state: the decoder's from its source, zero moments
  on the same step count for the rest.

`python pipelang_titan.py --check OUT MODULE...` loads each run module through torchtitan's own
ConfigManager, builds its model on the meta device and steps its LR container (torchtitan's
build path) through every step, and encodes a sample with the run's tokenizer as the trainer
builds it; pipelang's tests compare the lines it writes to the plan.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Annotated

import torch
import tyro
from torchtitan.components.optimizer import LRSchedulersContainer
from torchtitan.protocols.model import ModelConfigConverter

EXPORT = os.path.dirname(os.path.abspath(__file__))


def data_root() -> str:
    """Where the sources' files are: `PIPE_DATA_ROOT`, else the export's `data/`."""
    return os.environ.get("PIPE_DATA_ROOT", os.path.join(EXPORT, "data"))


# ------------------------------------------------------------------------------------- LR


def piece_at(piece: tuple, x: float) -> float:
    """The plan's formula for one piece (`pipelang::plan::lr::Piece::at`)."""
    shape, start, end = piece[0], piece[1], piece[2]
    length = end - start
    p = 1.0 if length <= 0 else min(max((x - start) / length, 0.0), 1.0)
    if shape == "linear":
        a, b = piece[3], piece[4]
        return a + (b - a) * p
    if shape == "cosine":
        a, b = piece[3], piece[4]
        return b + (a - b) * (1.0 + math.cos(math.pi * p)) / 2.0
    if shape == "cosine_part":
        a, b, part = piece[3], piece[4], piece[5]
        return b + (a - b) * (1.0 + math.cos(math.pi * p * part)) / 2.0
    if shape == "sqrt":
        a, b = piece[3], piece[4]
        return a - (a - b) * math.sqrt(p)
    if shape == "exponential":
        a, halvings = piece[3], piece[4]
        return a * 2.0 ** (-p * halvings)
    raise ValueError(f"unknown LR piece shape {shape!r}")


def plan_lr(pieces, offset: float, tokens_per_step: int, span: float, k: int) -> float:
    """The LR of the run's step k: the curve at the step's first token, clamped to the span."""
    x = min(max(offset + k * tokens_per_step, 0.0), span)
    i = 0
    while i < len(pieces) - 1 and pieces[i][2] <= x:
        i += 1
    return piece_at(pieces[i], x)


def _factor(step: int, *, pieces, offset, tokens_per_step, span, peak) -> float:
    return plan_lr(pieces, offset, tokens_per_step, span, step) / peak


class PlanLR(LRSchedulersContainer):
    """torchtitan's LR container with the plan's curve as its lambda (LambdaLR's `last_epoch`
    is the number of steps taken, so step k of the run, 0-based, runs at factor(k))."""

    @dataclass(kw_only=True, slots=True)
    class Config(LRSchedulersContainer.Config):
        peak: float = 1.0
        """The optimizer's `lr`; the lambda is the plan's LR over it."""
        offset: float = 0.0
        """Position on the schedule's span (tokens) of the run's first token."""
        tokens_per_step: int = 1
        span: float = 0.0
        pieces: Annotated[tuple, tyro.conf.Suppress] = ()
        """(shape, start, end, *values) per piece, positions on the schedule's span."""

        def build(self, *, optimizers, training_steps):
            lam = partial(
                _factor,
                pieces=self.pieces,
                offset=self.offset,
                tokens_per_step=self.tokens_per_step,
                span=self.span,
                peak=self.peak,
            )
            return PlanLR(optimizers, lam)

    def __init__(self, optimizers, lr_lambda) -> None:
        super().__init__(optimizers, lr_lambda)
        self.lr_lambda = lr_lambda
        for sched in self.schedulers:
            sched.optimizer.register_step_pre_hook(partial(self._set_lr, sched))

    def _set_lr(self, sched, optimizer, args, kwargs) -> None:
        # A loaded optimizer state brings the LR of the run it was saved by.
        for group, base in zip(optimizer.param_groups, sched.base_lrs):
            group["lr"] = base * self.lr_lambda(sched.last_epoch)


# --------------------------------------------------------------------------------- freezing


def _frozen(cfg, keep: tuple[str, ...] = ()):
    """`cfg` as a config whose built module has every parameter frozen but those under `keep`."""
    base = type(cfg)

    class Frozen(base):  # type: ignore[valid-type, misc]
        def build(self, **kwargs):
            module = base.build(self, **kwargs)
            for name, param in module.named_parameters():
                if not any(name.startswith(k) for k in keep):
                    param.requires_grad_(False)
            return module

    Frozen.__name__ = Frozen.__qualname__ = f"Frozen{base.__name__}"
    return Frozen(**{f.name: getattr(cfg, f.name) for f in fields(cfg) if f.init})


class PlanFreeze(ModelConfigConverter):
    """Freezes the recipe's frozen models: `decoder` (embeddings, blocks, norm, head), `vit`
    (the vision encoder but its projector) and `projector`. It changes the config in place
    (torchtitan 0.3.0's Kimi registry drops a converter's return value) and returns it."""

    @dataclass(kw_only=True, slots=True)
    class Config(ModelConfigConverter.Config):
        decoder: bool = False
        vit: bool = False
        projector: bool = False

    def __init__(self, config: Config, **kwargs):
        self.config = config

    def convert(self, model_config):
        c = self.config
        ve = getattr(model_config, "vision_encoder", None)
        if ve is not None:
            if c.vit and c.projector:
                model_config.vision_encoder = _frozen(ve)
            elif c.vit:
                model_config.vision_encoder = _frozen(ve, keep=("projector.",))
            elif c.projector:
                ve.projector = _frozen(ve.projector)
        elif c.vit or c.projector:
            raise ValueError("PlanFreeze: this model has no vision encoder to freeze")
        if c.decoder:
            for f in ("tok_embeddings", "norm", "lm_head"):
                setattr(model_config, f, _frozen(getattr(model_config, f)))
            model_config.layers = [_frozen(layer) for layer in model_config.layers]
        return model_config


# ----------------------------------------------------------------------------------- models


def _linear_init(std: float = 0.02):
    return {"weight": partial(torch.nn.init.trunc_normal_, std=std), "bias": torch.nn.init.zeros_}


def _blocks(
    *, dim, layers, heads, kv_heads, qk_norm, hidden, experts, top_k, shared, dense, rope_theta,
    rope_scaling, max_seq_len
):
    from torchtitan.models.common import ComplexRoPE, RMSNorm
    from torchtitan.models.common.config_utils import (
        get_attention_config,
        make_ffn_config,
        make_gqa_config,
        make_moe_config,
        make_routed_experts_config,
        make_router_config,
    )
    from torchtitan.models.common.param_init import depth_scaled_std
    from torchtitan.models.llama3.model import Llama3TransformerBlock
    from torchtitan.models.qwen3.model import Qwen3TransformerBlock

    head_dim = dim // heads
    # `rope_scaling`: RoPE.Config's own fields (Llama 3.1's `scaling = "llama"`), or none.
    rope = ComplexRoPE.Config(
        dim=head_dim, max_seq_len=max_seq_len, theta=rope_theta, **(rope_scaling or {})
    )
    norm = {"weight": torch.nn.init.ones_}
    out = []
    for i in range(layers):
        depth = _linear_init(depth_scaled_std(0.02, i))
        attention = make_gqa_config(
            dim=dim,
            n_heads=heads,
            n_kv_heads=kv_heads,
            # Stated, not derived: Qwen3's parameter and FLOP count (which the Trainer takes
            # before it builds the model) reads it.
            head_dim=head_dim,
            wqkv_param_init=_linear_init(),
            wo_param_init=depth,
            inner_attention=get_attention_config("flex"),
            fuse_qkv=True,
            rope=rope,
            # Per head, as pipelang's decoder normalises queries and keys (Qwen3's layout).
            qk_norm=RMSNorm.Config(normalized_shape=head_dim, param_init=norm) if qk_norm else None,
        )
        common = dict(
            attention_norm=RMSNorm.Config(normalized_shape=dim, param_init=norm),
            ffn_norm=RMSNorm.Config(normalized_shape=dim, param_init=norm),
            attention=attention,
        )
        def ffn(width):
            return make_ffn_config(
                dim=dim, hidden_dim=width, w1_param_init=_linear_init(), w2w3_param_init=depth
            )

        if experts is None:
            out.append(Llama3TransformerBlock.Config(feed_forward=ffn(hidden), **common))
        elif i < dense:
            # pipelang's `dense_layers`: the first blocks of a MoE decoder have a dense MLP of
            # the experts' width (Qwen3's block takes a feed-forward in place of its MoE).
            out.append(Qwen3TransformerBlock.Config(feed_forward=ffn(hidden), **common))
        else:
            w = partial(torch.nn.init.trunc_normal_, std=0.02)
            moe = make_moe_config(
                num_experts=experts,
                router=make_router_config(
                    dim=dim,
                    num_experts=experts,
                    gate_param_init=_linear_init(),
                    top_k=top_k,
                    score_func="softmax",
                    route_norm=True,
                ),
                routed_experts=make_routed_experts_config(
                    dim=dim,
                    hidden_dim=hidden,
                    num_experts=experts,
                    top_k=top_k,
                    param_init={"w1_EFD": w, "w2_EDF": w, "w3_EFD": w},
                    comm_backend="standard",
                ),
                # pipelang's `shared_experts = S`: one MLP S x the experts' width that every
                # token goes through, as torchtitan's (and DeepSeek-V3's) shared experts are.
                shared_experts=ffn(shared * hidden) if shared else None,
            )
            out.append(Qwen3TransformerBlock.Config(moe=moe, **common))
    return out


_VISION_LANGUAGE: dict[type, type] = {}


def _vision_language(text: type) -> type:
    """torchtitan's Kimi-VL container (MoonViT, projector, the scatter of image features into
    the text) around the blocks of the text family `text` (Llama3Model or Qwen3Model: GQA
    attention, dense or MoE). torchtitan 0.3.0's own Kimi config takes its blocks to be
    DeepSeek-V3's (multi-latent attention): its `update_from_config` and
    `get_nparams_and_flops`, which the Trainer calls before it builds the model, assert so.
    This one shards and counts the blocks as their own family does, and the vision encoder as
    the Kimi config does."""
    if text in _VISION_LANGUAGE:
        return _VISION_LANGUAGE[text]
    from torchtitan.models.kimi_k2_7 import KimiK25Model
    from torchtitan.models.kimi_k2_7.sharding import (
        _set_vision_encoder_sharding,
        _shard_decoder_after_embedding_scatter,
    )

    class PlanVisionLanguage(KimiK25Model):
        @dataclass(kw_only=True, slots=True)
        class Config(KimiK25Model.Config):
            def update_from_config(self, *, config, **kwargs) -> None:
                text.Config.update_from_config(self, config=config, **kwargs)
                par = config.parallelism
                tp = par.tensor_parallel_degree
                if tp > 1 and self.vision_encoder.num_heads % tp != 0:
                    raise ValueError(
                        f"tensor_parallel_degree ({tp}) must divide "
                        f"vision num_heads ({self.vision_encoder.num_heads})."
                    )
                if par.enable_sequence_parallel:
                    _shard_decoder_after_embedding_scatter(self)
                _set_vision_encoder_sharding(self.vision_encoder)

            def get_nparams_and_flops(self, model, seq_len: int) -> tuple[int, int]:
                return text.Config.get_nparams_and_flops(self, model, seq_len)

    name = f"PlanVisionLanguage{text.__name__}"
    PlanVisionLanguage.__name__ = PlanVisionLanguage.__qualname__ = name
    _VISION_LANGUAGE[text] = PlanVisionLanguage
    return PlanVisionLanguage


def model(
    *,
    vocab: int,
    dim: int,
    layers: int,
    heads: int,
    hidden: int,
    experts: int | None,
    top_k: int | None,
    rope_theta: float,
    max_seq_len: int,
    kv_heads: int | None = None,
    qk_norm: bool = False,
    tie_embeddings: bool = False,
    shared_experts: int = 0,
    dense_layers: int = 0,
    rope_scaling: dict | None = None,
    vit: dict | None = None,
    freeze: PlanFreeze.Config | None = None,
):
    """The run's ModelSpec: torchtitan's own spec for the family (parallelize and pipelining
    functions, state-dict adapter) with the recipe's model in it."""
    from torchtitan.models.common import Embedding, Linear, RMSNorm

    blocks = _blocks(
        dim=dim,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads or heads,
        qk_norm=qk_norm,
        hidden=hidden,
        experts=experts,
        top_k=top_k,
        shared=shared_experts,
        dense=dense_layers,
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        max_seq_len=max_seq_len,
    )
    parts = dict(
        vocab_size=vocab,
        dim=dim,
        tok_embeddings=Embedding.Config(
            num_embeddings=vocab,
            embedding_dim=dim,
            param_init={"weight": partial(torch.nn.init.normal_, std=1.0)},
        ),
        norm=RMSNorm.Config(normalized_shape=dim, param_init={"weight": torch.nn.init.ones_}),
        lm_head=Linear.Config(
            in_features=dim, out_features=vocab, param_init=_linear_init(dim**-0.5)
        ),
        layers=blocks,
        enable_weight_tying=tie_embeddings,
    )
    if experts is None:
        from torchtitan.models import llama3 as text_fam
        from torchtitan.models.llama3.model import Llama3Model as Text
    else:
        from torchtitan.models import qwen3 as text_fam
        from torchtitan.models.qwen3.model import Qwen3Model as Text
    if vit is not None:
        from torchtitan.models import kimi_k2_7 as fam

        cfg = _vision_language(Text).Config(
            **parts,
            vision_encoder=fam._vision_encoder_config(text_hidden_size=dim, **vit),
        )
        spec = fam.model_registry("debugmodel")
    else:
        cfg = Text.Config(**parts)
        spec = text_fam.model_registry("debugmodel" if experts is None else "debugmodel_moe")
    if freeze is not None:
        cfg = freeze.build().convert(cfg)
    return dataclasses.replace(spec, flavor="pipelang", model=cfg)


# ------------------------------------------------------------------------------------- data


def _register(name: str, glob: str, kind: str) -> None:
    """A source as a torchtitan dataset: the recipe's JSON-lines files under the data root."""
    from datasets import load_dataset
    from torchtitan.hf_datasets import DatasetConfig

    path = [os.path.join(data_root(), g) for g in glob.split(",")]

    def loader(p):
        return load_dataset("json", data_files=p, split="train", streaming=True)

    if kind == "text":
        from torchtitan.hf_datasets.text_datasets import DATASETS

        DATASETS[name] = DatasetConfig(path=path, loader=loader, sample_processor=lambda s: s["text"])
    else:
        from torchtitan.hf_datasets.multimodal import mm_datasets

        mm_datasets.MM_DATASETS[name] = DatasetConfig(
            path=path, loader=loader, sample_processor=mm_datasets._process_obelics_sample
        )


def data(sources: list[tuple[str, float, str, str]], seed: int, vit: dict | None):
    """(name, share, glob, kind) per source: text-only runs interleave their sources with the
    run's shares; a run with image sources reads those through torchtitan's multimodal loader
    (docs/engines.md says what that approximates)."""
    for name, _, glob, kind in sources:
        _register(name, glob, kind)
    images = [s for s in sources if s[3] != "text"]
    if images:
        from torchtitan.hf_datasets.multimodal.mm_datasets import MMDataLoader
        from torchtitan.hf_datasets.multimodal.utils.image import resize_to_patch_budget

        # Kimi-VL's own loader settings (its config registry's `_mm_dataloader`), with the
        # recipe's patch and merge.
        return MMDataLoader.Config(
            dataset=images[0][0],
            max_images_per_batch=128,
            patch_size=vit["patch_size"],
            temporal_patch_size=1,
            spatial_merge_size=vit["merge_kernel_size"][0],
            patch_order="raster",
            resize_fn=resize_to_patch_budget,
            max_patches=16384,
            max_patches_per_side=512,
            min_pixels=65536,
            max_pixels=16777216,
            image_mean=(0.5, 0.5, 0.5),
            image_std=(0.5, 0.5, 0.5),
        )
    from torchtitan.hf_datasets.text_datasets import (
        HFDataSource,
        InterleavedHuggingFaceTextDataLoader,
    )

    return InterleavedHuggingFaceTextDataLoader.Config(
        sources=[HFDataSource(dataset=n, weight=w) for n, w, _, _ in sources], seed=seed
    )


# ---------------------------------------------------------------------------------- trainer


def asset(name: str) -> str:
    """A tokenizer folder under the export (absolute, as torchtitan's `hf_assets_path`)."""
    return os.path.join(EXPORT, name)


def _vision_tokenizer(vit: dict | None, tokenizer: str) -> dict:
    """torchtitan's multimodal tokenizer for runs with a vision encoder: pipelang's image
    tokens when the folder is the export's byte tokenizer (its `tokenizer_config.json` names
    them under `pipelang`), else Kimi-VL's media tokens."""
    if vit is None:
        return {}
    import json

    from torchtitan.components.tokenizer import MultiModalTokenizer
    from torchtitan.models.kimi_k2_7 import KIMI_K2_5_SPECIAL_TOKENS

    special = {**KIMI_K2_5_SPECIAL_TOKENS, "vision_start_token": "<|media_start|>"}
    config = os.path.join(tokenizer, "tokenizer_config.json")
    if os.path.exists(config):
        with open(config) as f:
            special = json.load(f).get("pipelang", special)
    return {"tokenizer": MultiModalTokenizer.Config(**special)}


def run_folder(run_dir: str) -> str:
    return os.path.join(EXPORT, run_dir)


def final_checkpoint(run_dir: str, steps: int) -> str:
    """Where torchtitan writes a run's last checkpoint (absolute)."""
    return os.path.join(EXPORT, run_dir, "checkpoint", f"step-{steps}")


def trainer(
    *,
    run_dir: str,
    spec,
    lr: PlanLR.Config,
    steps: int,
    global_batch: int,
    local_batch: int,
    seq_len: int,
    sources,
    seed: int,
    load: str | None,
    load_optimizer: bool,
    save_optimizer: bool,
    tp: int,
    pp: int,
    ep: int,
    dp: int,
    tokenizer: str,
    vit: dict | None = None,
):
    from torchtitan.components.checkpoint import CheckpointManager
    from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
    from torchtitan.components.optimizer import default_adamw
    from torchtitan.config import DebugConfig, ParallelismConfig, TrainingConfig
    from torchtitan.trainer import Trainer

    return Trainer.Config(
        model_spec=spec,
        hf_assets_path=tokenizer,
        dump_folder=run_folder(run_dir),
        loss=ChunkedLossWrapper.Config(
            loss_fn=CrossEntropyLoss.Config(global_vocab_size=spec.model.vocab_size)
        ),
        optimizer=default_adamw(lr=lr.peak),
        lr_scheduler=lr,
        training=TrainingConfig(
            local_batch_size=local_batch,
            global_batch_size=global_batch,
            seq_len=seq_len,
            steps=steps,
            max_norm=1.0,
            # torchtitan 0.3.0 refuses CUDA graphs under pipeline parallelism and with its
            # standard expert-parallel token dispatcher.
            disable_cuda_graphs=pp > 1 or ep > 1,
        ),
        dataloader=data(sources, seed, vit),
        **_vision_tokenizer(vit, tokenizer),
        parallelism=ParallelismConfig(
            data_parallel_shard_degree=dp,
            tensor_parallel_degree=tp,
            pipeline_parallel_degree=pp,
            expert_parallel_degree=ep,
        ),
        # The run's own folder: empty unless this very run was interrupted, so
        # `initial_load_path` is never shadowed by another run's checkpoint.
        checkpoint=CheckpointManager.Config(
            enable=True,
            folder="checkpoint",
            interval=500,
            initial_load_path=load,
            initial_load_model_only=not load_optimizer,
            # The step counter, data position and scheduler are this run's own.
            exclude_from_loading=["lr_scheduler", "dataloader", "train_state"]
            if load_optimizer
            else [],
            last_save_model_only=not save_optimizer,
            keep_latest_k=0,
        ),
        debug=DebugConfig(seed=seed),
    )


# ---------------------------------------------------------------------------------- assemble


GROUPS = {
    "decoder": lambda n: not n.startswith("vision_encoder."),
    "vit": lambda n: n.startswith("vision_encoder.") and not n.startswith("vision_encoder.projector."),
    "projector": lambda n: n.startswith("vision_encoder.projector."),
}
"""A run's model groups by parameter name, as torchtitan's model names them."""

_NOT_MODEL = ("optimizer", "lr_scheduler", "dataloader", "train_state")


def _read(src: str, tmp: str) -> dict:
    """A checkpoint as one dict: a DCP folder (through a torch.save copy) or a torch.save file."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    if os.path.isdir(src):
        dcp_to_torch_save(src, tmp)
        loaded = torch.load(tmp, map_location="cpu", weights_only=False)
        os.remove(tmp)
        return loaded
    return torch.load(src, map_location="cpu", weights_only=False)


def _flat_optimizer(loaded: dict) -> dict:
    """The optimizer state torchtitan saved with a checkpoint, keyed as its `OptimizersContainer`
    flattens it (`state.FQN.NAME`, `param_groups.FQN.KEY`)."""
    nested = loaded.get("optimizer")
    if isinstance(nested, dict):
        return nested
    return {k[len("optimizer.") :]: v for k, v in loaded.items() if k.startswith("optimizer.")}


def _merged_optimizer(cfg, model, src: str, flat: dict) -> dict:
    """This run's AdamW state: the decoder's moments and step from `src`'s checkpoint, zero
    moments on the same step for the other groups (what `pipe run` does when a stage adds
    models to a carried optimizer), and this run's own param-group settings."""
    container = cfg.optimizer.build(model_parts=[model])
    # As the Trainer does before it loads: the LR container adds `initial_lr` to each param
    # group, and torchtitan's load asks the checkpoint for every key its optimizer has.
    cfg.lr_scheduler.build(optimizers=container, training_steps=cfg.training.steps)
    fresh = container.state_dict()
    steps = {v.item() for k, v in flat.items() if k.startswith("state.") and k.endswith(".step")}
    if not steps:
        raise SystemExit(
            f"assemble: {src} holds no optimizer state (its run must save with "
            "last_save_model_only = False)"
        )
    if len(steps) > 1:
        raise SystemExit(f"assemble: the optimizer state in {src} has several step counts {steps}")
    step = steps.pop()
    merged = {}
    for k, v in fresh.items():
        if not k.startswith("state."):
            merged[k] = v
            continue
        fqn = k[len("state.") :].rsplit(".", 1)[0]
        if GROUPS["decoder"](fqn):
            if k not in flat:
                raise SystemExit(f"assemble: {src} has no optimizer state `{k}`")
            if tuple(flat[k].shape) != tuple(v.shape):
                raise SystemExit(
                    f"assemble: optimizer state `{k}` in {src} is {tuple(flat[k].shape)}, "
                    f"not {tuple(v.shape)}"
                )
            merged[k] = flat[k]
        elif k.endswith(".step"):
            merged[k] = torch.full_like(v, step)
        else:
            merged[k] = torch.zeros_like(v)
    return merged


def assemble(out: str, module: str, sources: list[tuple[str, str]], optimizer: bool) -> None:
    """Writes one DCP checkpoint for run `module`: its model built and initialised on CPU as
    torchtitan does, then each (group, checkpoint) source's keys of that group laid over it.
    A source key the model lacks, a shape that differs, or a group the source lacks is an error.
    With `optimizer`, the checkpoint also holds the run's AdamW state (`_merged_optimizer`), the
    decoder's taken from the decoder's source."""
    import importlib

    import torch.distributed.checkpoint as dcp

    cfg = importlib.import_module(module).config()
    torch.manual_seed(cfg.debug.seed or 0)
    m = cfg.model_spec.model.build()
    m.init_weights(buffer_device=None)
    state = m.state_dict()
    decoder_src = None
    for group, src in sources:
        if group not in GROUPS:
            raise SystemExit(f"assemble: unknown model group `{group}` (one of {sorted(GROUPS)})")
        loaded = _read(src, out + ".src.pt")
        if group == "decoder":
            decoder_src = (src, _flat_optimizer(loaded))
        loaded = loaded.get("model", loaded)
        taken = 0
        for k, v in loaded.items():
            if k.split(".", 1)[0] in _NOT_MODEL or not GROUPS[group](k):
                continue
            if k not in state:
                raise SystemExit(f"assemble: {src} has `{k}`, which run {module} does not")
            if tuple(state[k].shape) != tuple(v.shape):
                raise SystemExit(
                    f"assemble: `{k}` in {src} is {tuple(v.shape)}, not {tuple(state[k].shape)}"
                )
            state[k] = v
            taken += 1
        if taken == 0:
            raise SystemExit(f"assemble: {src} holds no parameter of the {group}")
    if optimizer:
        if decoder_src is None:
            raise SystemExit("assemble: --optimizer needs the decoder's checkpoint")
        # The model's own tensors are `state`'s values: the zero-LR step torchtitan takes to
        # create the optimizer state leaves them as they are.
        state["optimizer"] = _merged_optimizer(cfg, m, *decoder_src)
    dcp.save(state, checkpoint_id=out)


# ------------------------------------------------------------------------------------ check


# Encoded by `--check` with each run's tokenizer: no leading space (a tokenizer that adds one
# fails), UTF-8 of two and three bytes, runs of spaces, a newline, a control byte.
TOKENIZER_SAMPLE = "Grüße,  世界!\n\ttab\x01 "


def check(out_path: str, modules: list[str]) -> None:
    """Every run module through torchtitan's ConfigManager; the model on the meta device; the LR
    container built as the trainer builds it, on a stand-in parameter, stepped as
    `Trainer.train_step` steps it (optimizer step, then scheduler step)."""
    import json

    from torchtitan.components.optimizer import OptimizersContainer
    from torchtitan.config.manager import ConfigManager

    sys.path.insert(0, EXPORT)
    with open(out_path, "w") as f:
        for module in modules:
            cfg = ConfigManager().parse_args(["--module", module, "--config", "config"])
            mc = cfg.model_spec.model
            # As the Trainer does before it builds the model (sharding, and checks of its own).
            mc.update_from_config(config=cfg)
            with torch.device("meta"):
                m = mc.build()
            named = dict(m.named_parameters())
            vision = sum(p.numel() for n, p in named.items() if n.startswith("vision_encoder."))
            decoder = sum(p.numel() for n, p in named.items() if not n.startswith("vision_encoder."))
            trainable = {
                group: sum(p.numel() for n, p in named.items() if p.requires_grad and sel(n))
                for group, sel in GROUPS.items()
            }
            groups = {
                group: sum(p.numel() for n, p in named.items() if sel(n))
                for group, sel in GROUPS.items()
            }
            param = torch.nn.Parameter(torch.zeros(1))
            holder = torch.nn.Module()
            holder.p = param
            opts = cfg.optimizer.build(model_parts=[holder])
            assert isinstance(opts, OptimizersContainer)
            sched = cfg.lr_scheduler.build(optimizers=opts, training_steps=cfg.training.steps)
            lrs = []
            inner = next(iter(opts))
            for _ in range(cfg.training.steps):
                param.grad = torch.zeros_like(param)
                opts.step()
                lrs.append(inner.param_groups[0]["lr"])
                sched.step()
            tokens = None
            if os.path.isdir(cfg.hf_assets_path):
                tok = cfg.tokenizer.build(tokenizer_path=cfg.hf_assets_path)
                tokens = {
                    "vocab_size": tok.get_vocab_size(),
                    "eos_id": tok.eos_id,
                    "text": TOKENIZER_SAMPLE,
                    "sample": tok.encode(TOKENIZER_SAMPLE, add_bos=True, add_eos=True),
                    "decoded": tok.decode(tok.encode(TOKENIZER_SAMPLE)),
                    **{
                        f"{name}_id": getattr(tok, f"{name}_id")
                        for name in ("image", "vision_start", "vision_end", "pad")
                        if hasattr(tok, f"{name}_id")
                    },
                }
            # The rotary frequencies as torchtitan computes them: the angle of its cache at
            # position 1 (the model above is on the meta device, so its RoPE is built again).
            rope_cfg = mc.layers[0].attention.rope
            freqs = torch.angle(rope_cfg.build().cache[1]).tolist()
            rope = [
                c.theta
                for _, c, _, _ in mc.traverse(type(mc.layers[0].attention.rope))
            ]
            ck = cfg.checkpoint
            f.write(
                json.dumps(
                    {
                        "module": module,
                        "decoder_params": decoder,
                        "vision_params": vision,
                        "trainable": trainable,
                        "groups": groups,
                        "rope_theta": rope[0],
                        "rope_freqs": freqs,
                        "rope_scaling": rope_cfg.scaling,
                        "steps": cfg.training.steps,
                        "seq_len": cfg.training.seq_len,
                        "global_batch": cfg.training.global_batch_size,
                        "initial_load_path": ck.initial_load_path,
                        "initial_load_model_only": ck.initial_load_model_only,
                        "last_save_model_only": ck.last_save_model_only,
                        "exclude_from_loading": list(ck.exclude_from_loading),
                        "dump_folder": cfg.dump_folder,
                        "hf_assets_path": cfg.hf_assets_path,
                        "tokenizer": tokens,
                        "lrs": lrs,
                    }
                )
                + "\n"
            )


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "assemble":
        sys.path.insert(0, EXPORT)
        rest = sys.argv[4:]
        optimizer = "--optimizer" in rest
        pairs = [tuple(a.split("=", 1)) for a in rest if a != "--optimizer"]
        assemble(sys.argv[2], sys.argv[3], pairs, optimizer)
    else:
        sys.exit(
            "usage: pipelang_titan.py --check OUT MODULE... | "
            "assemble OUT MODULE [--optimizer] GROUP=CHECKPOINT..."
        )
