//! `pipe sample-data DIR [--seed N]`: the generated sample corpus (shapes, captions, documents,
//! videos) that the shipped recipes train on.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_USAGE;

/// Write the generated sample data (shapes, captions, documents, videos) into DIR.
#[derive(clap::Args, Debug)]
pub struct Args {
    dir: PathBuf,
    #[arg(long, default_value_t = 2025)]
    seed: u64,
}

pub fn run(a: Args) -> ExitCode {
    match pipelang_runtime::data::generate_sample_data(&a.dir, a.seed) {
        Ok(s) => {
            println!(
                "wrote {} files ({} images, {} bytes) to {}",
                s.files,
                s.images,
                s.bytes,
                s.dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
