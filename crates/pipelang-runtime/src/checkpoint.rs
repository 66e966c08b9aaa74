//! Checkpoints: one safetensors file per stage and tag, `checkpoints/STAGE/TAG.safetensors` in
//! the run directory (`final` at the end of a stage, `step-NNNNNNNN` in between). A file holds
//! the models the stage trains, `model/MODEL/PARAM` (the CoCa head as the model `coca`), and the
//! optimizer state, `optim/` + the names AdamW gives it. Frozen models are not saved: their
//! weights stay where they came from. A stage that averages its weights (`average`, `ema`)
//! also saves the running average (`average/model/MODEL/PARAM`); its final checkpoint holds the
//! averaged weights under `model/` (what later stages load) and the last step's under `raw/`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};

/// The tag of the checkpoint a stage ends with; later stages take their weights from it.
const FINAL: &str = "final";

/// The CoCa head is stored as a model of its own.
pub const COCA: &str = "coca";

/// Where the checkpoint of `stage` after `steps_done` steps goes, relative to the run
/// directory; `last`: the stage's final checkpoint.
pub fn rel_path(stage: &str, steps_done: u64, last: bool) -> String {
    if last {
        final_path(stage)
    } else {
        tagged(stage, &format!("step-{steps_done:08}"))
    }
}

/// The final checkpoint of `stage`, relative to the run directory.
pub fn final_path(stage: &str) -> String {
    tagged(stage, FINAL)
}

/// The checkpoint `parent` saves when it passes the branch point of `branch` (`after PARENT @
/// POSITION`): the weights `branch` starts from. Never pruned (not periodic).
pub fn branch_path(parent: &str, branch: &str) -> String {
    let name = pipelang::check::variants::file_name(branch);
    tagged(parent, &format!("branch-{name}"))
}

/// A variant's folder is spelled without brackets (`mid[42]` in `checkpoints/mid-42/`).
fn tagged(stage: &str, tag: &str) -> String {
    let dir = pipelang::check::variants::file_name(stage);
    format!("checkpoints/{dir}/{tag}.safetensors")
}

/// The tensors of one checkpoint file, by their full key.
#[derive(Default)]
pub struct Checkpoint {
    tensors: BTreeMap<String, Tensor>,
    /// The safetensors header's metadata: what the stage trained with (`TRAINED_WITH`).
    metadata: HashMap<String, String>,
}

/// The metadata key of the SHA-256 (hex) of the file's tensor data, everything after the
/// header: a resume checks it, so a bit flipped on disk is caught, not only a torn file.
pub const DATA_SHA256: &str = "pipelang.data_sha256";

/// The metadata key of the settings a checkpoint's stage trained with: JSON of
/// `TrainedWith`.
pub const TRAINED_WITH: &str = "pipelang.trained_with";

/// What the optimizer of the stage that wrote a checkpoint ran with, as the plan stated it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainedWith {
    pub stage: String,
    pub adamw: crate::model::AdamWConfig,
    /// The LR factor of each trained model (`lr_scale`; 1 where not written).
    pub lr_scale: BTreeMap<String, f64>,
    pub seed: u64,
    /// The rotary embedding (base and scaling) of the stage's decoder at the last step before
    /// the file was written: a model extended with YaRN or Llama 3's scaling must run with it.
    /// Empty in files written before checkpoints recorded it, and for stages without a decoder.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rope: BTreeMap<String, pipelang::plan::rope::Rope>,
}

impl Checkpoint {
    pub fn load(run_dir: &Path, rel: &str, dev: &Device) -> candle_core::Result<Checkpoint> {
        let bytes = std::fs::read(run_dir.join(rel))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, dev)?
            .into_iter()
            .collect();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| candle_core::Error::Msg(format!("{rel}: {e}")))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(Checkpoint { tensors, metadata })
    }

    pub fn set_trained_with(&mut self, t: &TrainedWith) {
        let json = serde_json::to_string(t).expect("plain settings serialise");
        self.metadata.insert(TRAINED_WITH.into(), json);
    }

    /// What the stage that wrote the file trained with; `None` for a file written before
    /// checkpoints recorded it.
    pub fn trained_with(&self) -> Option<TrainedWith> {
        serde_json::from_str(self.metadata.get(TRAINED_WITH)?).ok()
    }

    /// Writes the file atomically: a run killed while saving keeps the previous checkpoint.
    pub fn save(&self, run_dir: &Path, rel: &str) -> std::io::Result<()> {
        let path = run_dir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        let bytes = safetensors::serialize(&self.tensors, meta).map_err(std::io::Error::other)?;
        super::atomic::write(&path, &with_checksum(&bytes)?)
    }

    pub fn add_model(&mut self, model: &str, params: BTreeMap<String, Tensor>) {
        for (k, v) in params {
            self.tensors.insert(format!("model/{model}/{k}"), v);
        }
    }

    pub fn set_optimizer(&mut self, state: HashMap<String, Tensor>) {
        for (k, v) in state {
            self.tensors.insert(format!("optim/{k}"), v);
        }
    }

    /// The parameters of `model`, named as in the model (empty when the file has none).
    pub fn model(&self, model: &str) -> BTreeMap<String, Tensor> {
        self.strip(&format!("model/{model}/")).collect()
    }

    /// Every tensor under `prefix`, by its key without it.
    pub fn under(&self, prefix: &str) -> BTreeMap<String, Tensor> {
        self.strip(prefix).collect()
    }

    /// Adds tensors under their full keys.
    pub fn extend(&mut self, tensors: impl IntoIterator<Item = (String, Tensor)>) {
        self.tensors.extend(tensors);
    }

    pub fn optimizer(&self) -> HashMap<String, Tensor> {
        self.strip("optim/").collect()
    }

    fn strip<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (String, Tensor)> + 'a {
        self.tensors
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
    }
}

/// The header and the data of a safetensors file (its 8-byte length, its JSON, the rest).
fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let end = n.checked_add(8).filter(|&e| e <= bytes.len())?;
    Some((&bytes[8..end], &bytes[end..]))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file with [`DATA_SHA256`] added to its header's metadata. The tensors' offsets count
/// from the start of the data, so a longer header moves nothing; it is padded to 8 bytes, as
/// safetensors writes it.
fn with_checksum(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = |e: String| std::io::Error::other(format!("a checkpoint just serialised: {e}"));
    let (header, data) = split(bytes).ok_or_else(|| bad("no header".into()))?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
    let meta = header
        .entry("__metadata__")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let serde_json::Value::Object(m) = meta {
        m.insert(DATA_SHA256.into(), sha256_hex(data).into());
    }
    let mut h = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    Ok(out)
}

/// Reads a checkpoint file back and checks that it is a whole safetensors file (its header and
/// every tensor's extent within the file) and that its data still has the checksum it was
/// written with (files written before checkpoints carried one are held to their structure
/// only): what a resume must find before it trusts it.
pub fn verify(run_dir: &Path, rel: &str) -> Result<(), String> {
    let bytes = std::fs::read(run_dir.join(rel)).map_err(|e| e.to_string())?;
    let t = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    if t.is_empty() {
        return Err("it holds no tensors".into());
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
    if let Some(want) = meta.metadata().as_ref().and_then(|m| m.get(DATA_SHA256)) {
        let (_, data) = split(&bytes).ok_or("no header")?;
        let got = sha256_hex(data);
        if &got != want {
            return Err(format!(
                "its tensor data does not match the checksum it was written with (sha256 {got}, \
                 written {want}): the file changed on disk after it was saved"
            ));
        }
    }
    Ok(())
}

/// Whether `rel` is a periodic checkpoint (one that may be pruned); a final checkpoint is
/// where later stages take their weights from and is never removed.
pub fn is_periodic(rel: &str) -> bool {
    rel.contains("/step-")
}

/// Removes a periodic checkpoint no longer recorded in `run.ron`.
pub fn remove(run_dir: &Path, rel: &str) {
    if is_periodic(rel) {
        // A checkpoint that cannot be removed costs disk space, nothing else.
        let _ = std::fs::remove_file(run_dir.join(rel));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_in_the_data_fails_the_checksum_and_a_file_without_one_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let mut ck = Checkpoint::default();
        let w = Tensor::new(&[1.0f32, 2.0, 3.0], &dev).unwrap();
        ck.add_model("lm", [("w".to_string(), w)].into());
        ck.set_trained_with(&TrainedWith {
            stage: "s".into(),
            adamw: crate::model::AdamWConfig::default(),
            lr_scale: BTreeMap::new(),
            seed: 1,
            rope: BTreeMap::new(),
        });
        let rel = rel_path("s", 1, false);
        ck.save(dir.path(), &rel).unwrap();
        verify(dir.path(), &rel).unwrap();
        // The tensors and the other metadata read back as written.
        let back = Checkpoint::load(dir.path(), &rel, &dev).unwrap();
        assert_eq!(
            back.model("lm")["w"].to_vec1::<f32>().unwrap(),
            [1.0, 2.0, 3.0]
        );
        assert_eq!(back.trained_with().unwrap().seed, 1);
        let path = dir.path().join(&rel);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        // Still a whole safetensors file: only the checksum can tell.
        assert!(safetensors::SafeTensors::deserialize(&bytes).is_ok());
        let why = verify(dir.path(), &rel).unwrap_err();
        assert!(why.contains("does not match the checksum"), "{why}");
        // A file written without the checksum is held to its structure only.
        let plain = safetensors::serialize(&ck.tensors, None).unwrap();
        std::fs::write(&path, &plain).unwrap();
        verify(dir.path(), &rel).unwrap();
    }

    #[test]
    fn models_and_optimizer_state_round_trip_under_their_own_keys() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let t = |v: f32| Tensor::new(&[v], &dev).unwrap();
        let mut ck = Checkpoint::default();
        ck.add_model("lm", [("w".to_string(), t(1.0))].into());
        ck.add_model(COCA, [("w".to_string(), t(2.0))].into());
        ck.set_optimizer([("adamw.m.lm.w".to_string(), t(3.0))].into());
        let rel = rel_path("s", 20, false);
        assert_eq!(rel, "checkpoints/s/step-00000020.safetensors");
        ck.save(dir.path(), &rel).unwrap();
        let back = Checkpoint::load(dir.path(), &rel, &dev).unwrap();
        let get = |m: BTreeMap<String, Tensor>| m["w"].to_vec1::<f32>().unwrap();
        assert_eq!(get(back.model("lm")), [1.0]);
        assert_eq!(get(back.model(COCA)), [2.0]);
        assert!(back.model("vit").is_empty());
        assert_eq!(back.optimizer().len(), 1);

        let last = rel_path("s", 40, true);
        assert_eq!(last, final_path("s"));
        ck.save(dir.path(), &last).unwrap();
        assert!(is_periodic(&rel) && !is_periodic(&last));
        remove(dir.path(), &rel);
        remove(dir.path(), &last);
        assert!(!dir.path().join(&rel).exists());
        assert!(dir.path().join(&last).exists());
    }
}
