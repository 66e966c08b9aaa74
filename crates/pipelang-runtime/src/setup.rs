//! Before anything trains: the pipeline checked and planned, its data found and opened, the
//! run directory prepared. Every problem here stops the run before a file is written.

use std::path::{Path, PathBuf};

use pipelang::check::ir::{DataId, DataKind, ModelKind, Pipeline};
use pipelang::check::{self, Checked};
use pipelang::diag::{Code, Diagnostic};
use pipelang::plan::Plan;

use super::data::{self, ImageConfig, Source, SourceKind, SourceSpec, Tokenizer};

#[derive(Debug)]
pub enum RunError {
    /// The pipeline (or its data) has problems: diagnostics located in the source.
    Diagnostics {
        file: PathBuf,
        source: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// Training started and failed inside a stage (a numerical or device error).
    Training(String),
    /// Another live process trains into the run directory.
    Locked(String),
    /// The run stopped on request (SIGINT, SIGTERM) at a step boundary, after a checkpoint;
    /// `--resume` continues it.
    Stopped(super::record::Stopped),
    /// Anything else (I/O, a run directory that does not fit), with what to do about it.
    Other(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Diagnostics {
                file, diagnostics, ..
            } => write!(f, "{}: {} problem(s)", file.display(), diagnostics.len()),
            RunError::Training(s) | RunError::Locked(s) | RunError::Other(s) => f.write_str(s),
            RunError::Stopped(s) => write!(f, "{s}"),
        }
    }
}

impl From<candle_core::Error> for RunError {
    fn from(e: candle_core::Error) -> Self {
        RunError::Training(format!("training failed: {e}"))
    }
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Other(format!("I/O error: {e}"))
    }
}

pub struct Prepared {
    pub file: PathBuf,
    pub source: String,
    pub checked: Checked,
    pub plan: Plan,
    pub data_root: PathBuf,
}

/// Checks and plans a pipeline.
pub fn prepare(file: &Path, profile: Option<&str>, source: String) -> Result<Prepared, RunError> {
    let checked = check::check_with(&source, profile);
    from_checked(file, source, checked)
}

/// A pipeline already checked (an edit the reload rules accepted): planned, with its data root.
pub fn from_checked(file: &Path, source: String, checked: Checked) -> Result<Prepared, RunError> {
    if checked.has_errors() {
        let diagnostics = checked
            .diagnostics
            .into_iter()
            .filter(|d| d.is_error())
            .collect();
        return Err(RunError::Diagnostics {
            file: file.to_path_buf(),
            source,
            diagnostics,
        });
    }
    let plan = checked
        .plan()
        .cloned()
        .ok_or_else(|| RunError::Other("the pipeline could not be planned".into()))?;
    let p = checked.pipeline.as_ref().unwrap();
    // What `pipe check` finds in the files the pipeline names (tokenizers against the
    // decoders they feed) stops the run here too, before anything is written.
    let shapes = |m| crate::build::param_shapes(p, m).ok();
    let diagnostics: Vec<Diagnostic> = check::files::check(p, file)
        .into_iter()
        .chain(check::init_file::check(p, file, &shapes))
        .filter(|d| d.is_error())
        .collect();
    if !diagnostics.is_empty() {
        return Err(RunError::Diagnostics {
            file: file.to_path_buf(),
            source,
            diagnostics,
        });
    }
    let data_root = check::files::data_root(file, p);
    Ok(Prepared {
        file: file.to_path_buf(),
        source,
        checked,
        plan,
        data_root,
    })
}

/// Generates the sample data a profile points at, when it is not there yet.
pub fn ensure_sample_data(
    p: &Pipeline,
    root: &Path,
    seed: u64,
    log: &mut dyn FnMut(String),
) -> Result<(), RunError> {
    if !p.sample_data || root.join("corpus").exists() {
        return Ok(());
    }
    log(format!(
        "generating sample data in {} (first use)",
        root.display()
    ));
    // Generated beside its final place and renamed in one step, so a concurrent run never
    // reads a half-written corpus; if another run got there first, its copy is kept.
    std::fs::create_dir_all(root)?;
    let tmp = root.join(format!(".corpus.tmp{}", std::process::id()));
    data::generate_sample_data(&tmp, seed)
        .map_err(|e| RunError::Other(format!("cannot generate sample data: {e}")))?;
    if std::fs::rename(&tmp, root.join("corpus")).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

pub fn source_kind(k: DataKind) -> SourceKind {
    match k {
        DataKind::Text => SourceKind::Text,
        DataKind::ImageText => SourceKind::ImageText,
        DataKind::Interleaved => SourceKind::Interleaved,
        DataKind::Video => SourceKind::Video,
    }
}

/// The string column a text source reads from Parquet files.
pub fn column_of(d: &pipelang::check::ir::Data) -> &str {
    d.column
        .as_ref()
        .map_or(pipelang::schema::data::DEFAULT_COLUMN, |c| c.value.as_str())
}

pub fn tokenizer_for(p: &Pipeline, d: DataId, root: &Path) -> Result<Tokenizer, RunError> {
    match &p.data[d].tokenizer {
        None => Ok(Tokenizer::Bytes),
        Some(t) => Tokenizer::from_hf_file(&root.join(&t.value))
            .map_err(|e| RunError::Other(e.to_string())),
    }
}

/// How images are cut for the ViT (and merged by the projector) in this pipeline.
pub fn image_config(p: &Pipeline) -> ImageConfig {
    let vit = p.models.iter().find_map(|m| {
        if let ModelKind::Vit(v) = &m.kind {
            Some(v)
        } else {
            None
        }
    });
    let merge = p.models.iter().find_map(|m| {
        if let ModelKind::Projector(pr) = &m.kind {
            Some(pr.pixel_shuffle.value)
        } else {
            None
        }
    });
    ImageConfig {
        patch: vit.map_or(14, |v| v.patch.value as u32),
        merge: merge.unwrap_or(1) as u32,
        max_side: vit.map_or(448, |v| v.max_image_side.value as u32),
    }
}

/// Opens a data source; a failure becomes a diagnostic on its declaration.
pub fn open_source(prep: &Prepared, d: DataId) -> Result<Source, RunError> {
    let p = prep.checked.pipeline.as_ref().unwrap();
    let data = &p.data[d];
    let spec = SourceSpec {
        name: data.name.clone(),
        kind: source_kind(data.kind),
        patterns: data.globs.iter().map(|g| g.value.clone()).collect(),
        column: data.column.as_ref().map(|c| c.value.clone()),
        caption: data.caption.as_ref().map(|c| c.value.clone()),
    };
    let tok = tokenizer_for(p, d, &prep.data_root)?;
    Source::open(&spec, &prep.data_root, &tok, image_config(p)).map_err(|e| data_error(prep, d, e))
}

pub fn data_error(prep: &Prepared, d: DataId, e: data::DataError) -> RunError {
    let p = prep.checked.pipeline.as_ref().unwrap();
    let data = &p.data[d];
    let span = data.globs.first().map_or(data.name_span, |g| g.span);
    let diagnostic = Diagnostic::new(
        Code::DATA_FILES,
        format!("data source `{}`: {e}", data.name),
    )
    .label(span, format!("resolved under {}", prep.data_root.display()))
    .help("fix the file or the glob; paths are relative to the pipeline file (or its data_root)");
    RunError::Diagnostics {
        file: prep.file.clone(),
        source: prep.source.clone(),
        diagnostics: vec![diagnostic],
    }
}
