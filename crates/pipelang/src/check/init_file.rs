//! `init = "PATH"` files: where the weights are (a safetensors file, or a Hugging Face style
//! folder with `model.safetensors` or `model.safetensors.index.json` and its shards), their
//! header read without the tensors (8 bytes of little-endian length, then that much JSON:
//! the safetensors format, parsed here with serde_json so the core needs no tensor crate), the
//! naming rule shared with the runtime, and the check of names, shapes and dtypes against the
//! parameters the runtime creates for the declared fields (`pipe check` passes those in: the
//! layout is the runtime's, never repeated here).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic};

use super::file_memo::FileMemo;
use super::ir::{ModelId, ModelKind, Pipeline, Sp};

/// One tensor as the header describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub dtype: String,
    pub shape: Vec<usize>,
    /// The shard that holds it.
    pub file: PathBuf,
}

/// The dtypes the runtime reads (converted to f32, its training dtype).
pub const FLOAT_DTYPES: &[&str] = &["F32", "F16", "BF16"];

/// Headers above this are not safetensors written by any tool we know (the format caps them
/// at 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// Where `init` points, relative to the pipeline file's folder.
pub fn path_of(pipeline_file: &Path, init: &str) -> PathBuf {
    pipeline_file
        .parent()
        .map_or(PathBuf::from("."), Path::to_path_buf)
        .join(init)
}

/// The safetensors files of an `init` path: the file itself, or a folder's `model.safetensors`,
/// or the shards its `model.safetensors.index.json` names.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(format!("{} does not exist", path.display()));
    }
    let single = path.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = path.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(format!(
            "the folder {} has neither `model.safetensors` nor `model.safetensors.index.json`",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", index.display()))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| format!("{}: no `weight_map`", index.display()))?;
    let mut out: Vec<PathBuf> = vec![];
    for f in map.values() {
        let f = f.as_str().ok_or_else(|| {
            format!(
                "{}: a `weight_map` value is not a file name",
                index.display()
            )
        })?;
        let p = path.join(f);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The tensors of one safetensors file, from its header only.
pub fn header(file: &Path) -> Result<BTreeMap<String, TensorInfo>, String> {
    let mut f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| format!("{}: shorter than a safetensors header", file.display()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER || n + 8 > size {
        return Err(format!(
            "{}: not a safetensors file (its first 8 bytes give a header of {n} bytes in a file of {size})",
            file.display()
        ));
    }
    let mut json = vec![0u8; n as usize];
    f.read_exact(&mut json)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| format!("{}: not a safetensors file (header: {e})", file.display()))?;
    let obj = v.as_object().ok_or_else(|| {
        format!(
            "{}: not a safetensors file (header is not an object)",
            file.display()
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, t) in obj {
        if name == "__metadata__" {
            continue;
        }
        let dtype = t.get("dtype").and_then(|d| d.as_str());
        let shape: Option<Vec<usize>> = t
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect());
        let (Some(dtype), Some(shape)) = (dtype, shape) else {
            return Err(format!(
                "{}: not a safetensors file (tensor `{name}` has no dtype or shape)",
                file.display()
            ));
        };
        out.insert(
            name.clone(),
            TensorInfo {
                dtype: dtype.to_string(),
                shape,
                file: file.to_path_buf(),
            },
        );
    }
    Ok(out)
}

/// Headers read once while their files are unchanged ([`FileMemo`]): the language server
/// checks `init` on every edit, and a sharded checkpoint has a header in every shard.
pub type Headers = FileMemo<Result<BTreeMap<String, TensorInfo>, String>>;

/// [`header`], from `headers` while the file is unchanged. A file that cannot be stat'ed is
/// read anyway, for [`header`]'s own words about it.
fn header_cached(
    headers: &mut Headers,
    file: &Path,
) -> Result<BTreeMap<String, TensorInfo>, String> {
    headers
        .get(file, |f| Ok(header(f)))
        .unwrap_or_else(|_| header(file))
}

/// The key prefix of a model's tensors in a file: `model/NAME/` as pipelang's checkpoints write
/// them (the model's own name, or the one model a file holds), else none (bare parameter names).
pub fn prefix<'a>(names: impl Iterator<Item = &'a str> + Clone, model: &str) -> String {
    let own = format!("model/{model}/");
    if names.clone().any(|n| n.starts_with(&own)) {
        return own;
    }
    let mut models: Vec<&str> = names
        .filter_map(|n| n.strip_prefix("model/")?.split('/').next())
        .collect();
    models.sort();
    models.dedup();
    match models.as_slice() {
        [one] => format!("model/{one}/"),
        _ => String::new(),
    }
}

/// Every tensor of an `init` path, keyed as the model names its parameters.
pub fn tensors(path: &Path, model: &str) -> Result<BTreeMap<String, TensorInfo>, String> {
    let mut all = BTreeMap::new();
    for f in files(path)? {
        all.extend(header(&f)?);
    }
    let pre = prefix(all.keys().map(String::as_str), model);
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(pre.as_str())?.to_string(), v)))
        .collect())
}

/// The declared fields of a model with their values, to name the one a dimension follows.
fn fields_of(p: &Pipeline, m: ModelId) -> Vec<(&'static str, u64)> {
    match &p.models[m].kind {
        ModelKind::Decoder(d) => {
            let mut v = vec![
                ("vocab", d.vocab.value),
                ("d_model", d.d_model.value),
                ("layers", d.layers.value),
            ];
            if let Some(f) = d.ffn {
                v.push(("ffn", f.value));
            }
            if let Some(e) = d.experts {
                v.push(("experts", e.value));
            }
            if let Some(k) = d.kv_heads {
                v.push((
                    "kv_heads x head size",
                    k.value * (d.d_model.value / d.heads.value.max(1)),
                ));
            }
            v
        }
        ModelKind::Vit(v) => vec![("d_model", v.d_model.value), ("patch", v.patch.value)],
        ModelKind::Projector(pr) => vec![("pixel_shuffle", pr.pixel_shuffle.value)],
    }
}

/// Names and shapes of `init` files against what the runtime builds for each model
/// (`expected`: parameter names and shapes, `None` where the caller cannot say; then only the
/// file and its dtypes are checked).
pub fn check(
    p: &Pipeline,
    pipeline_file: &Path,
    expected: &dyn Fn(ModelId) -> Option<Vec<(String, Vec<usize>)>>,
) -> Vec<Diagnostic> {
    check_cached(p, pipeline_file, expected, &mut Headers::default())
}

/// [`check`], with headers taken from `headers` while their files have not changed.
pub fn check_cached(
    p: &Pipeline,
    pipeline_file: &Path,
    expected: &dyn Fn(ModelId) -> Option<Vec<(String, Vec<usize>)>>,
    headers: &mut Headers,
) -> Vec<Diagnostic> {
    let mut out = vec![];
    for (m, model) in p.models.iter_enumerated() {
        let Some(init) = &model.init else { continue };
        if let Err(d) = check_one(p, m, init, pipeline_file, expected, headers) {
            out.push(d);
        }
    }
    out
}

fn check_one(
    p: &Pipeline,
    m: ModelId,
    init: &Sp<String>,
    pipeline_file: &Path,
    expected: &dyn Fn(ModelId) -> Option<Vec<(String, Vec<usize>)>>,
    headers: &mut Headers,
) -> Result<(), Diagnostic> {
    let name = &p.models[m].name;
    let path = path_of(pipeline_file, &init.value);
    let shards = files(&path).map_err(|why| {
        Diagnostic::new(Code::INIT_MISSING, format!("the `init` of `{name}` is not there: {why}"))
            .label(init.span, "resolved relative to the pipeline file")
            .help("point `init` at a safetensors file, or a folder with `model.safetensors` (or `model.safetensors.index.json` and its shards)")
    })?;
    let mut all = BTreeMap::new();
    for f in &shards {
        all.extend(header_cached(headers, f).map_err(|why| {
            Diagnostic::new(Code::INIT_NOT_SAFETENSORS, format!("the `init` of `{name}` cannot be read: {why}"))
                .label(init.span, "this file")
                .help("`init` reads safetensors files (PyTorch `.bin`/`.pt` files: convert them with `safetensors.torch.save_file`)")
        })?);
    }
    let pre = prefix(all.keys().map(String::as_str), name);
    let have: BTreeMap<&str, &TensorInfo> = all
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(pre.as_str())?, v)))
        .collect();
    if let Some((k, t)) = have
        .iter()
        .find(|(_, t)| !FLOAT_DTYPES.contains(&t.dtype.as_str()))
    {
        return Err(Diagnostic::new(
            Code::INIT_DTYPE,
            format!(
                "tensor `{k}` of `{name}`'s `init` is {}, not a float",
                t.dtype
            ),
        )
        .label(init.span, format!("in {}", t.file.display()))
        .help(format!(
            "the runtime reads {} (as f32): save the weights as floats",
            FLOAT_DTYPES.join(", ")
        )));
    }
    let Some(want) = expected(m) else {
        return Ok(());
    };
    let missing: Vec<&str> = want
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !have.contains_key(k))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(4).map(|k| format!("`{k}`")).collect();
        let stray: Vec<String> = have
            .keys()
            .filter(|k| !want.iter().any(|(w, _)| w == *k))
            .take(2)
            .map(|k| format!("`{k}`"))
            .collect();
        let naming = if stray.is_empty() {
            String::new()
        } else {
            format!(" The file names its tensors like {}.", stray.join(", "))
        };
        return Err(Diagnostic::new(
            Code::INIT_MISSING_TENSOR,
            format!(
                "`{name}`'s `init` lacks {} of the {} tensors the model has: {}{}",
                missing.len(),
                want.len(),
                shown.join(", "),
                if missing.len() > 4 { ", ..." } else { "" }
            ),
        )
        .label(init.span, format!("{} tensors here", have.len()))
        .help(format!(
            "the names are pipelang's own, as its checkpoints write them (`model/{name}/PARAM` or bare `PARAM`, e.g. `{}`); Hugging Face names (`model.layers.0.self_attn.q_proj.weight`) are not mapped.{naming}",
            want[0].0
        )));
    }
    for (k, shape) in &want {
        let t = have[k.as_str()];
        if &t.shape != shape {
            let decided: Vec<String> = shape
                .iter()
                .zip(t.shape.iter().chain(std::iter::repeat(&0)))
                .filter(|(w, h)| w != h)
                .flat_map(|(w, _)| {
                    fields_of(p, m)
                        .into_iter()
                        .filter(move |(_, v)| *v as usize == *w)
                        .map(|(f, v)| format!("`{f} = {v}`"))
                })
                .collect();
            let field = if decided.is_empty() {
                "the declared fields".to_string()
            } else {
                decided.join(" and ")
            };
            return Err(Diagnostic::new(
                Code::INIT_SHAPE,
                format!(
                    "tensor `{k}` of `{name}`'s `init` is {:?}; the declared model needs {:?}",
                    t.shape, shape
                ),
            )
            .label(init.span, format!("{:?} in {}", t.shape, t.file.display()))
            .label(p.models[m].name_span, format!("{field} makes it {shape:?}"))
            .help(format!(
                "declare the model as the checkpoint was trained ({field} decides this shape), or point `init` at a checkpoint of this model"
            )));
        }
    }
    Ok(())
}
