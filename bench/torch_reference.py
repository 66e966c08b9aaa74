#!/usr/bin/env python3
"""PyTorch reference for the pipelang training-throughput benchmark (issue 6).

Trains the benchmark model in PyTorch on the CPU and prints training tokens/s and model FLOP
utilisation (MFU), so that `pipe bench` (same model, same figures) can be compared with it;
bench/compare.sh runs both alternately.

Run:
    bash bench/setup_torch.sh                         # once: venv with torch + numpy
    .tools/torch-venv/bin/python bench/torch_reference.py [--steps 30] [--warmup 5]
        [--threads N] [--compile] [--data FILE.txt] [--seed 0]

Model (must stay identical to the Rust side; parameter counts are printed to check):
    decoder LM, byte vocabulary 256, d_model 128, 4 layers, 4 heads (head_dim 32),
    pre-norm RMSNorm (eps 1e-5, weight only), RoPE base 10,000 in rotate-half form on q and k,
    causal attention via F.scaled_dot_product_attention, MLP 128 -> 512 -> 128 with GELU in tanh form (as the Rust side),
    final RMSNorm, untied output head, no biases anywhere. q, k, v come from one fused
    128 -> 384 projection: the same parameters and FLOPs as three separate ones, and the form
    a tuned PyTorch model uses, so the baseline is not handicapped.
Training: seq_len 256, batch 16, fp32, cross-entropy, AdamW (lr 3e-4, betas 0.9/0.95, eps 1e-8,
    weight decay 0.1 on every parameter, as candle_nn::AdamW does), gradient clipping to a global
    norm of 1.0. Data: bytes of --data, or deterministic pseudo-text, packed into consecutive
    windows of seq_len + 1 bytes (input = first seq_len, target = shifted by one).

Figures:
    tokens/s  = batch * seq_len / step time; median over the timed steps (after --warmup steps),
                with min and max, because these machines are noisy. A step is the whole
                training step: batch fetch, forward, loss, backward, clipping, optimizer update.
    model FLOPs per step = 6 * N * T  +  12 * L * d_model * S * T / 2
        N = non-embedding parameters (all weights except the token-embedding table, which is a
            lookup, not a matmul; the untied output head *is* counted),
        T = tokens per step (batch * seq_len), L = layers, S = seq_len.
        6 * N * T is forward (2) + backward (4) FLOPs per weight per token. The attention term is
        QK^T and AV (2 * 2 * S * d_model per token and layer forward, times 3 for fwd + bwd),
        halved because causal attention only needs the lower triangle (PaLM appendix B).
    MFU = model FLOPs per step * steps/s (from the median tokens/s) / measured sgemm peak,
        where the peak is the median GFLOP/s of a 512x512x512 fp32 torch.matmul
        (2 * 512^3 FLOPs) on the same threads.

The last line is machine-readable, parsed by bench/compare.sh:
    RESULT framework=torch-eager|torch-compile tokens_per_s=... mfu=... sgemm_gflops=...
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 256
D_MODEL = 128
N_LAYERS = 4
N_HEADS = 4
MLP_HIDDEN = 4 * D_MODEL
ROPE_BASE = 10_000.0
NORM_EPS = 1e-5
SEQ_LEN = 256
BATCH = 16
LR = 3e-4
BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0


class RMSNorm(nn.Module):
    """Written out rather than nn.RMSNorm so both sides compute exactly the same thing."""

    def __init__(self, dim: int, eps: float = NORM_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    # Rotate-half form: frequency i pairs dimension i with i + head_dim/2.
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL, bias=False)
        self.out = nn.Linear(D_MODEL, D_MODEL, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = (
            self.qkv(x).view(b, s, 3, N_HEADS, D_MODEL // N_HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        )
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, s, D_MODEL))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn_norm = RMSNorm(D_MODEL)
        self.attn = Attention()
        self.mlp_norm = RMSNorm(D_MODEL)
        self.mlp = nn.Sequential(
            nn.Linear(D_MODEL, MLP_HIDDEN, bias=False),
            nn.GELU(approximate="tanh"),
            nn.Linear(MLP_HIDDEN, D_MODEL, bias=False),
        )

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class DecoderLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.ModuleList(Block() for _ in range(N_LAYERS))
        self.final_norm = RMSNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, VOCAB, bias=False)
        cos, sin = rope_tables(SEQ_LEN, D_MODEL // N_HEADS, ROPE_BASE)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)
        logits = self.head(self.final_norm(x))
        return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def pseudo_text(n_bytes: int, seed: int) -> bytes:
    """Deterministic English-looking bytes (words, spaces, punctuation, newlines), so the byte
    distribution resembles real text without shipping or downloading a corpus."""
    import random

    rng = random.Random(seed)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [26 - i for i in range(len(letters))]
    lexicon = [
        "".join(rng.choices(letters, weights, k=rng.randint(1, 9))) for _ in range(2000)
    ]
    out = bytearray()
    while len(out) < n_bytes:
        sentence = rng.choices(lexicon, k=rng.randint(4, 18))
        sentence[0] = sentence[0].capitalize()
        out += (" ".join(sentence) + rng.choice([".", ".", ".", "?", "!"])).encode()
        out += b"\n" if rng.random() < 0.2 else b" "
    return bytes(out[:n_bytes])


def load_data(path: str | None, seed: int) -> torch.Tensor:
    window = SEQ_LEN + 1
    if path is None:
        raw = pseudo_text(64 * BATCH * window, seed)
    else:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            sys.exit(f"torch_reference: cannot read --data {path}: {e.strerror}")
        if len(raw) < BATCH * window:
            sys.exit(
                f"torch_reference: --data {path} has {len(raw)} bytes; one batch needs "
                f"{BATCH * window} (batch {BATCH} x (seq_len {SEQ_LEN} + 1)). Use a bigger file."
            )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


class Batches:
    """Consecutive windows of seq_len + 1 bytes, wrapping at the end of the data."""

    def __init__(self, data: torch.Tensor):
        window = SEQ_LEN + 1
        n_windows = data.numel() // window
        self.windows = data[: n_windows * window].view(n_windows, window).long()
        self.cursor = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(self.cursor, self.cursor + BATCH) % self.windows.shape[0]
        self.cursor = (self.cursor + BATCH) % self.windows.shape[0]
        w = self.windows[idx]
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def sgemm_gflops(device: torch.device, n: int = 512, reps: int = 100) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(5):
        torch.matmul(a, b, out=c)
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        sync()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def count_params(model: DecoderLM) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    return total, total - model.embed.weight.numel()


def model_flops_per_step(non_embedding_params: int) -> float:
    tokens = BATCH * SEQ_LEN
    dense = 6 * non_embedding_params * tokens
    attention = 12 * N_LAYERS * D_MODEL * SEQ_LEN * tokens / 2
    return dense + attention


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train")
    p.add_argument("--data", help="text file used as byte data (default: pseudo-text)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--steps and --threads must be >= 1, --warmup >= 0")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    framework = "torch-compile" if args.compile else "torch-eager"

    device = torch.device(args.device)
    peak = sgemm_gflops(device)
    model = DecoderLM().to(device)
    n_total, n_non_embed = count_params(model)
    flops_per_step = model_flops_per_step(n_non_embed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)
    step_fn = torch.compile(model) if args.compile else model
    batches = Batches(load_data(args.data, args.seed))

    print(
        f"torch {torch.__version__}, {framework}, device {device_name(device)}, "
        f"threads {torch.get_num_threads()}, "
        f"params {n_total} ({n_non_embed} non-embedding), "
        f"{flops_per_step / 1e9:.2f} GFLOP/step, sgemm 512^3 {peak:.1f} GFLOP/s"
    )

    step_times, losses = [], []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        x, y = batches.next()
        x, y = x.to(device), y.to(device)
        loss = step_fn(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        loss_value = loss.item()
        elapsed = time.perf_counter() - t0
        losses.append(loss_value)
        if not math.isfinite(loss_value):
            sys.exit(f"torch_reference: loss is {loss_value} at step {step}")
        if step == 0:
            print(f"first step (incl. any compilation): {elapsed:.2f} s, loss {loss_value:.4f}")
        if step >= args.warmup:
            step_times.append(elapsed)

    tokens = BATCH * SEQ_LEN
    rates = [tokens / t for t in step_times]
    median_rate = statistics.median(rates)
    mfu = flops_per_step * (median_rate / tokens) / (peak * 1e9)
    print(
        f"tokens/s median {median_rate:.0f} (min {min(rates):.0f}, max {max(rates):.0f}) over "
        f"{args.steps} steps after {args.warmup} warm-up; loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    )
    print(f"MFU {mfu * 100:.1f}% of the measured sgemm peak")
    print(
        f"RESULT framework={framework} tokens_per_s={median_rate:.1f} "
        f"tokens_per_s_min={min(rates):.1f} tokens_per_s_max={max(rates):.1f} "
        f"mfu={mfu:.4f} sgemm_gflops={peak:.1f}"
    )


if __name__ == "__main__":
    main()
