//! The models of a pipeline, built on candle from their checked declarations.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::model::{
    Decoder, DecoderConfig, Kernels, MlpKind, MoeConfig, Projector, ProjectorConfig, Vit,
    VitConfig, config::default_mlp_hidden, init::seeded_var_builder,
};
use pipelang::check::ir::{self, ModelId, ModelKind, Pipeline};

pub fn decoder_config(d: &ir::DecoderSpec) -> DecoderConfig {
    let mlp = match d.mlp.value {
        ir::Mlp::SwiGlu => MlpKind::SwiGlu,
        ir::Mlp::Gelu => MlpKind::Gelu,
    };
    let d_model = d.d_model.value as usize;
    DecoderConfig {
        vocab: d.vocab.value as usize,
        d_model,
        layers: d.layers.value as usize,
        heads: d.heads.value as usize,
        mlp,
        mlp_hidden: d
            .ffn
            .map_or_else(|| default_mlp_hidden(mlp, d_model), |f| f.value as usize),
        moe: match (d.experts, d.active_experts) {
            (Some(e), Some(a)) => Some(MoeConfig {
                experts: e.value as usize,
                active: a.value as usize,
                aux_weight: pipelang::schema::decoder::MOE_BALANCE_WEIGHT,
                shared: d.shared_experts.map_or(0, |s| s.value as usize),
            }),
            _ => None,
        },
        kv_heads: d.kv_heads.map(|k| k.value as usize),
        qk_norm: d.qk_norm.value,
        tie_embeddings: d.tie_embeddings.value,
        dense_layers: d.dense_layers.map_or(0, |n| n.value as usize),
        kernels: Default::default(),
    }
}

pub fn vit_config(v: &ir::VitSpec) -> VitConfig {
    VitConfig::new(
        v.patch.value as usize,
        v.d_model.value as usize,
        v.layers.value as usize,
        v.heads.value as usize,
    )
}

/// One model of the recipe with its variables.
pub enum Built {
    Decoder(Decoder),
    Vit(Vit),
    Projector(Projector),
}

pub struct ModelSlot {
    pub name: String,
    pub vars: VarMap,
    pub built: Built,
}

/// Builds model `m`: seeded initial weights, replaced by `weights` where given (tensors named
/// as in the model, without the model prefix).
///
/// A frozen model is built from plain tensors, not variables: it takes part in the forward
/// pass, and backpropagation never computes a gradient for it.
pub fn build(
    p: &Pipeline,
    m: ModelId,
    seed: u64,
    weights: Option<&BTreeMap<String, Tensor>>,
    frozen: bool,
    kernels: Kernels,
    dev: &Device,
) -> candle_core::Result<ModelSlot> {
    let model = &p.models[m];
    let vars = VarMap::new();
    let vb = if frozen {
        let w = weights.ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "frozen model `{}` has no trained weights",
                model.name
            ))
        })?;
        let map: std::collections::HashMap<String, Tensor> =
            w.iter().map(|(k, t)| (k.clone(), t.detach())).collect();
        candle_nn::VarBuilder::from_tensors(map, candle_core::DType::F32, dev)
    } else {
        if let Some(w) = weights {
            let mut data = vars.data().lock().expect("var map lock");
            for (k, t) in w {
                data.insert(k.clone(), candle_core::Var::from_tensor(t)?);
            }
        }
        seeded_var_builder(
            &vars,
            seed ^ (m.index() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            dev,
        )
    };
    let built = match &model.kind {
        ModelKind::Decoder(d) => {
            let cfg = DecoderConfig {
                kernels,
                ..decoder_config(d)
            };
            Built::Decoder(Decoder::new(vb, &cfg)?)
        }
        ModelKind::Vit(v) => {
            let cfg = VitConfig {
                kernels,
                ..vit_config(v)
            };
            Built::Vit(Vit::new(vb, &cfg)?)
        }
        ModelKind::Projector(pr) => {
            let in_dim = match &p.models[pr.from.value].kind {
                ModelKind::Vit(v) => v.d_model.value as usize,
                _ => candle_core::bail!("projector `{}` must start at a vit", model.name),
            };
            let out_dim = match &p.models[pr.to.value].kind {
                ModelKind::Decoder(d) => d.d_model.value as usize,
                _ => candle_core::bail!("projector `{}` must end at a decoder", model.name),
            };
            Built::Projector(Projector::new(
                vb,
                &ProjectorConfig {
                    in_dim,
                    out_dim,
                    pixel_shuffle: pr.pixel_shuffle.value as usize,
                },
            )?)
        }
    };
    Ok(ModelSlot {
        name: model.name.clone(),
        vars,
        built,
    })
}

/// All variables of a var map by name (sorted).
pub fn tensors(vars: &VarMap) -> BTreeMap<String, Tensor> {
    let data = vars.data().lock().expect("var map lock");
    data.iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect()
}

/// The parameters the runtime creates for model `m` (names as in the model, shapes), read off
/// the constructors themselves with a backend that records every request and hands back a
/// broadcast zero (no memory per parameter): what an `init` file must hold, from the one
/// layout the models define.
pub fn param_shapes(p: &Pipeline, m: ModelId) -> candle_core::Result<Vec<(String, Vec<usize>)>> {
    use candle_core::{DType, Shape};
    use candle_nn::{Init, var_builder::SimpleBackend};
    use std::sync::{Arc, Mutex};

    struct Recording(Arc<Mutex<Vec<(String, Vec<usize>)>>>);
    impl SimpleBackend for Recording {
        fn get(
            &self,
            s: Shape,
            name: &str,
            _: Init,
            dtype: DType,
            dev: &Device,
        ) -> candle_core::Result<Tensor> {
            self.0
                .lock()
                .expect("recording lock")
                .push((name.to_string(), s.dims().to_vec()));
            Tensor::zeros((), dtype, dev)?.broadcast_as(s)
        }
        fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
            candle_core::bail!("parameter {name}: shapes are recorded, not looked up")
        }
        fn contains_tensor(&self, _: &str) -> bool {
            false
        }
    }
    let seen = Arc::new(Mutex::new(vec![]));
    let dev = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_backend(
        Box::new(Recording(seen.clone())),
        candle_core::DType::F32,
        dev.clone(),
    );
    let model = &p.models[m];
    match &model.kind {
        ModelKind::Decoder(d) => {
            Decoder::new(vb, &decoder_config(d))?;
        }
        ModelKind::Vit(v) => {
            Vit::new(vb, &vit_config(v))?;
        }
        ModelKind::Projector(pr) => {
            let (ModelKind::Vit(v), ModelKind::Decoder(d)) =
                (&p.models[pr.from.value].kind, &p.models[pr.to.value].kind)
            else {
                candle_core::bail!("projector `{}` must join a vit to a decoder", model.name)
            };
            Projector::new(
                vb,
                &ProjectorConfig {
                    in_dim: v.d_model.value as usize,
                    out_dim: d.d_model.value as usize,
                    pixel_shuffle: pr.pixel_shuffle.value as usize,
                },
            )?;
        }
    }
    let mut out = seen.lock().expect("recording lock").clone();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The weights of `init` for model `name`: every tensor of the file (or shards), under the
/// model's parameter names (`pipelang::check::init_file::prefix`), as f32.
pub fn load_init(
    path: &std::path::Path,
    name: &str,
    dev: &Device,
) -> candle_core::Result<BTreeMap<String, Tensor>> {
    use pipelang::check::init_file;
    let files = init_file::files(path).map_err(candle_core::Error::Msg)?;
    let mut all = BTreeMap::new();
    for f in files {
        all.extend(candle_core::safetensors::load(&f, dev)?);
    }
    let pre = init_file::prefix(all.keys().map(String::as_str), name);
    let mut out = BTreeMap::new();
    for (k, t) in all {
        if let Some(k) = k.strip_prefix(pre.as_str()) {
            out.insert(k.to_string(), t.to_dtype(candle_core::DType::F32)?);
        }
    }
    Ok(out)
}
