//! Mixture-of-experts feed-forward: top-k routing with the gates renormalised over the chosen
//! experts, shared experts every token goes through (DeepSeekMoE), and the Switch Transformer
//! load-balancing loss.

use super::config::{DecoderConfig, MoeConfig};
use super::layers::{Linear, Mlp};
use candle_core::{D, DType, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct Moe {
    router: Linear,
    experts: Vec<Mlp>,
    /// The shared experts as one MLP (see [`MoeConfig::shared`]).
    shared: Option<Mlp>,
    cfg: MoeConfig,
}

impl Moe {
    pub fn new(vb: VarBuilder, cfg: &DecoderConfig, moe: &MoeConfig, out_std: f64) -> Result<Self> {
        let d = cfg.d_model;
        let router = Linear::new(
            vb.pp("router"),
            d,
            moe.experts,
            false,
            (d as f64).powf(-0.5),
        )?;
        let experts = (0..moe.experts)
            .map(|e| {
                Mlp::new(
                    vb.pp(format!("expert{e}")),
                    d,
                    cfg.mlp_hidden,
                    cfg.mlp,
                    cfg.kernels,
                    out_std,
                )
            })
            .collect::<Result<_>>()?;
        let shared = if moe.shared > 0 {
            Some(Mlp::new(
                vb.pp("shared"),
                d,
                cfg.mlp_hidden * moe.shared,
                cfg.mlp,
                cfg.kernels,
                out_std,
            )?)
        } else {
            None
        };
        Ok(Self {
            router,
            experts,
            shared,
            cfg: moe.clone(),
        })
    }

    pub fn detached(&self) -> Self {
        Self {
            router: self.router.detached(),
            experts: self.experts.iter().map(Mlp::detached).collect(),
            shared: self.shared.as_ref().map(Mlp::detached),
            cfg: self.cfg.clone(),
        }
    }

    /// `x [N, D]` -> (`[N, D]`, weighted balance loss).
    ///
    /// The balance loss is `aux_weight * E * sum_e f_e P_e` with `f_e` the share of routing
    /// slots (token x k) given to expert e (a constant) and `P_e` the mean router probability
    /// (differentiable): 1 x aux_weight when routing is uniform.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, d) = x.dims2()?;
        let (e_count, k) = (self.cfg.experts, self.cfg.active);
        let probs = candle_nn::ops::softmax(&self.router.forward(x)?, D::Minus1)?;
        let pv = probs.to_vec2::<f32>()?;
        let mut chosen = vec![0f32; n * e_count];
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); e_count];
        for (i, p) in pv.iter().enumerate() {
            let mut order: Vec<usize> = (0..e_count).collect();
            // Stable sort: ties go to the lower expert index, so routing is deterministic.
            order.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
            for &e in &order[..k] {
                chosen[i * e_count + e] = 1.0;
                rows[e].push(i as u32);
            }
        }
        let dev = x.device();
        let chosen = Tensor::from_vec(chosen, (n, e_count), dev)?;
        let gates = (&probs * &chosen)?;
        let gates = gates.broadcast_div(&gates.sum_keepdim(1)?)?;
        let mut y = Tensor::zeros((n, d), DType::F32, dev)?;
        for (e, expert) in self.experts.iter().enumerate() {
            if rows[e].is_empty() {
                continue;
            }
            let ids = Tensor::new(rows[e].as_slice(), dev)?;
            let out = expert.forward(&x.index_select(&ids, 0)?)?;
            let g = gates.narrow(1, e, 1)?.contiguous()?.index_select(&ids, 0)?;
            y = y.index_add(&ids, &out.broadcast_mul(&g)?, 0)?;
        }
        if let Some(shared) = &self.shared {
            y = (y + shared.forward(x)?)?;
        }
        let share: Vec<f32> = rows
            .iter()
            .map(|r| r.len() as f32 / (n * k) as f32)
            .collect();
        let share = Tensor::from_vec(share, e_count, dev)?;
        let balance = (probs.mean(0)? * share)?.sum_all()?;
        let aux = (balance * (self.cfg.aux_weight * e_count as f64))?;
        Ok((y, aux))
    }
}
