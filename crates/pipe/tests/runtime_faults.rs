//! Faults around checkpoints: a disk that fills up, or turns read-only, while one is written
//! keeps the previous one whole and says what failed; a checkpoint that cannot be read back on `--resume` is named,
//! and the one before it is used when it is kept.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{final_hashes, pipe, steps_once, wait_for_steps, write_pipeline};
use pipelang_runtime::record::RunRecord;

fn record(out: &Path) -> RunRecord {
    RunRecord::load(&out.join("run.ron")).unwrap()
}

/// A tmpfs of `size` mounted by the test on `dir` (CI runs as root), unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8) runs");
        assert!(
            o.status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }
}

impl SmallDisk {
    /// Remounts it read-only (as a failing disk or an admin would), in place.
    fn read_only(&self, writable: bool) {
        let o = Command::new("mount")
            .args(["-o", if writable { "remount,rw" } else { "remount,ro" }])
            .arg(&self.0)
            .output()
            .expect("mount(8) runs");
        assert!(
            o.status.success(),
            "remounting the test's tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut all = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            all.extend(files_under(&e.path()));
        } else {
            all.push(e.path().display().to_string());
        }
    }
    all
}

#[test]
fn a_full_disk_during_a_checkpoint_keeps_the_previous_one_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let clean = dir.path().join("clean");
    assert!(
        pipe(&["run", f, "--out", clean.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    // A checkpoint of this model is ~385 KB: one fits in 600 KB, a second beside it does not.
    let size = std::fs::metadata(clean.join("checkpoints/first/final.safetensors"))
        .unwrap()
        .len();
    assert!(size > 300_000 && size < 600_000, "checkpoint size {size}");
    let out = dir.path().join("disk");
    let disk = SmallDisk::mount(&out, "600k");
    let o = pipe(&[
        "run",
        f,
        "--out",
        out.to_str().unwrap(),
        "--checkpoint-every",
        "5",
        "--checkpoint-minutes",
        "0",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write the checkpoint checkpoints/first/step-00000010.safetensors"),
        "{err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    let kept = "checkpoints/first/step-00000005.safetensors";
    assert!(
        err.contains(&format!("the previous checkpoint {kept} is whole")),
        "{err}"
    );
    let rec = record(&out);
    assert_eq!(
        rec.stage("first").unwrap().checkpoint.as_deref(),
        Some(kept)
    );
    pipelang_runtime::checkpoint::verify(&out, kept).unwrap();
    let mut left = files_under(&out);
    // atomic::write's temporary files are `.NAME.tmpPID` beside their target.
    left.retain(|f| {
        let name = Path::new(f).file_name().unwrap().to_string_lossy();
        name.starts_with('.') && name.contains(".tmp")
    });
    assert!(left.is_empty(), "no partial file left: {left:?}");

    // On a disk with room, the run resumes from it and ends as if nothing had happened.
    let moved = dir.path().join("moved");
    copy_dir(&out, &moved);
    drop(disk);
    let o = pipe(&["run", f, "--out", moved.to_str().unwrap(), "--resume"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(final_hashes(&clean), final_hashes(&moved));
    assert_eq!(steps_once(&moved), 80);
}

/// The stage's checkpoint directory turns read-only while the run is stopped (a tmpfs of its
/// own, remounted; as root chmod would not stop a write): the resumed run fails at its next
/// checkpoint saying what failed, the checkpoint it resumed from stays whole and recorded,
/// and once the directory is writable again `--resume` ends as an uninterrupted run does.
#[test]
fn a_read_only_checkpoint_directory_keeps_the_previous_checkpoint_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let clean = dir.path().join("clean");
    assert!(
        pipe(&["run", f, "--out", clean.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let out = dir.path().join("run");
    let disk = SmallDisk::mount(&out.join("checkpoints/first"), "16m");
    let every = ["--checkpoint-every", "5", "--checkpoint-minutes", "0"];
    let mut args = vec!["run", f, "--out", out.to_str().unwrap()];
    args.extend(every);
    let mut child = pipe(&args).spawn().unwrap();
    wait_for_steps(&mut child, &out, 7);
    // SAFETY: kill(2) on the PID of a child this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(5), "stopped in `first`");
    let kept = record(&out)
        .stage("first")
        .unwrap()
        .checkpoint
        .clone()
        .unwrap();

    disk.read_only(false);
    let mut resume = args.clone();
    resume.push("--resume");
    let o = pipe(&resume).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write the checkpoint checkpoints/first/step-"),
        "{err}"
    );
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(
        err.contains(&format!("the previous checkpoint {kept} is whole")),
        "{err}"
    );
    assert_eq!(
        record(&out).stage("first").unwrap().checkpoint.as_deref(),
        Some(kept.as_str())
    );
    pipelang_runtime::checkpoint::verify(&out, &kept).unwrap();

    disk.read_only(true);
    let o = pipe(&resume).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(final_hashes(&clean), final_hashes(&out));
    assert_eq!(steps_once(&out), 80);
}

/// How the test damages the latest checkpoint.
#[derive(Clone, Copy)]
enum Damage {
    /// Cut in half: the file is no longer whole.
    Torn,
    /// One bit of its last tensor byte flipped: still a whole safetensors file, which only
    /// the checksum in its header tells from the one written.
    BitFlip,
}

/// A run checkpointing at every step (by wall time), stopped by SIGTERM in `first`, keeping
/// `keep` checkpoints; the latest is then damaged.
fn stopped_with_a_corrupt_checkpoint(
    dir: &Path,
    file: &Path,
    keep: &str,
    damage: Damage,
) -> (PathBuf, String) {
    let out = dir.join("run");
    let mut child = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--checkpoint-every",
        "1000",
        "--checkpoint-minutes",
        "0.0000001",
        "--keep-checkpoints",
        keep,
    ])
    .spawn()
    .unwrap();
    wait_for_steps(&mut child, &out, 15);
    // SAFETY: kill(2) on the PID of a child this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(5));
    let last = record(&out)
        .stage("first")
        .unwrap()
        .checkpoint
        .clone()
        .unwrap();
    let mut bytes = std::fs::read(out.join(&last)).unwrap();
    match damage {
        Damage::Torn => bytes.truncate(bytes.len() / 2),
        Damage::BitFlip => *bytes.last_mut().unwrap() ^= 0x10,
    }
    std::fs::write(out.join(&last), &bytes).unwrap();
    (out, last)
}

#[test]
fn a_corrupt_checkpoint_on_resume_is_named_and_the_one_before_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let f = file.to_str().unwrap();
    let clean = dir.path().join("clean");
    assert!(
        pipe(&["run", f, "--out", clean.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let (out, bad) = stopped_with_a_corrupt_checkpoint(dir.path(), &file, "3", Damage::Torn);
    let before = record(&out)
        .stage("first")
        .unwrap()
        .earlier
        .last()
        .cloned()
        .unwrap();

    let o = pipe(&["run", f, "--out", out.to_str().unwrap(), "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("the checkpoint {bad} cannot be read (")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "resumes from the one before it, {} (step {})",
            before.checkpoint, before.step
        )),
        "{err}"
    );
    assert_eq!(
        final_hashes(&clean),
        final_hashes(&out),
        "still bit-identical"
    );
    assert_eq!(steps_once(&out), 80);
}

#[test]
fn a_checkpoint_with_a_flipped_bit_and_none_before_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path());
    let (out, bad) = stopped_with_a_corrupt_checkpoint(dir.path(), &file, "1", Damage::BitFlip);
    let o = pipe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--resume",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("the checkpoint {bad} cannot be read")),
        "{err}"
    );
    assert!(
        err.contains("no earlier checkpoint of the stage is kept"),
        "{err}"
    );
    assert!(
        err.contains("does not match the checksum it was written with"),
        "{err}"
    );
}
