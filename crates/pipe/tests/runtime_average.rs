//! Weight averaging along a stage on the candle runtime: the weights a stage hands on are the
//! mean (or the EMA) of the weights after each step of its window, computed here from the
//! per-step weights; a run killed and resumed inside the window ends with the same averaged
//! weights, bit for bit.
//!
//! The per-step weights come from runs of the same stage cut after k steps: with a constant
//! LR, a budget in steps and the stage's seeded data order, the first k steps of the long run
//! are the k steps of the short one (the test checks that premise on the last step, whose
//! weights the averaging run keeps under `raw/`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{final_hashes_of, pipe, run_to_end, wait_for_steps, write_pipeline_text};

const RECIPE: &str = r#"
pipeline average_test {
  seed        = 5
  batch       = 4
  seq_len     = 32
  sample_data = "SAMPLE"
}
model lm = decoder { vocab = 300, d_model = 32, layers = 1, heads = 2 }
data web = text("corpus/text/*.jsonl")
stage pre {
  train  = [lm]
  budget = 4 steps
  lr     = constant(3e-3)
  data   = web
}
stage anneal after pre {
  train  = [lm]
  budget = STEPS steps
  lr     = constant(1e-3)
  data   = web
  AVERAGING
}
"#;

fn run(dir: &Path, name: &str, steps: u64, averaging: &str) -> std::path::PathBuf {
    let text = RECIPE
        .replace("STEPS", &steps.to_string())
        .replace("AVERAGING", averaging);
    let file = write_pipeline_text(dir, &format!("{name}.pipe"), &text);
    let out = dir.join(name);
    run_to_end(&file, &out);
    out
}

/// The f32 tensors of a checkpoint under `prefix`, by their key without it.
fn tensors(file: &Path, prefix: &str) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(file).unwrap();
    let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    t.names()
        .into_iter()
        .filter_map(|n| {
            let k = n.strip_prefix(prefix)?;
            let v = t.tensor(n).unwrap();
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{n}");
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            Some((k.to_string(), data))
        })
        .collect()
}

fn final_of(out: &Path, prefix: &str) -> BTreeMap<String, Vec<f32>> {
    tensors(&out.join("checkpoints/anneal/final.safetensors"), prefix)
}

/// The weights after each step k (1..=n) of `anneal`, from runs cut after k steps.
fn per_step(dir: &Path, n: u64) -> Vec<BTreeMap<String, Vec<f32>>> {
    (1..=n)
        .map(|k| final_of(&run(dir, &format!("cut{k}"), k, ""), "model/"))
        .collect()
}

fn assert_close(got: &BTreeMap<String, Vec<f32>>, want: &BTreeMap<String, Vec<f64>>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, g) in got {
        for (a, b) in g.iter().zip(&want[k]) {
            // Float rounding: the average is kept in f64 and stored in f32.
            assert!(
                (*a as f64 - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "{k}: {a} != {b}"
            );
        }
    }
}

#[test]
fn the_averaged_weights_are_the_mean_of_the_windows_steps() {
    let dir = tempfile::tempdir().unwrap();
    let steps = per_step(dir.path(), 6);
    let out = run(dir.path(), "avg", 6, "average = last(3 steps)");
    // The premise: the averaging run's last step is the 6-step run's.
    assert_eq!(final_of(&out, "raw/lm/"), {
        let w: BTreeMap<String, Vec<f32>> = steps[5]
            .iter()
            .map(|(k, v)| (k.strip_prefix("lm/").unwrap().to_string(), v.clone()))
            .collect();
        w
    });
    // The mean of the weights after steps 4, 5 and 6 (steps 3..=5 counted from 0).
    let mut want: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for w in &steps[3..6] {
        for (k, v) in w {
            let acc = want.entry(k.clone()).or_insert_with(|| vec![0.0; v.len()]);
            for (a, x) in acc.iter_mut().zip(v) {
                *a += *x as f64 / 3.0;
            }
        }
    }
    let got = final_of(&out, "model/");
    assert_close(&got, &want);
    // And it is not the last step's weights.
    assert_ne!(got, steps[5]);
}

#[test]
fn the_ema_is_that_of_the_per_step_weights() {
    let dir = tempfile::tempdir().unwrap();
    let steps = per_step(dir.path(), 5);
    let out = run(dir.path(), "ema", 5, "ema = 0.5");
    // e = w1, then e = 0.5 e + 0.5 w_k.
    let mut want: BTreeMap<String, Vec<f64>> = steps[0]
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(|x| *x as f64).collect()))
        .collect();
    for w in &steps[1..] {
        for (k, v) in w {
            for (e, x) in want.get_mut(k).unwrap().iter_mut().zip(v) {
                *e = 0.5 * *e + 0.5 * *x as f64;
            }
        }
    }
    assert_close(&final_of(&out, "model/"), &want);
}

#[test]
fn a_run_killed_inside_the_window_resumes_to_the_same_average() {
    let dir = tempfile::tempdir().unwrap();
    let text = RECIPE
        .replace("STEPS", "120")
        .replace("AVERAGING", "average = last(50%)");
    let file = write_pipeline_text(dir.path(), "kill.pipe", &text);
    let f = file.to_str().unwrap();
    let go = |out: &Path, extra: &[&str]| {
        let out = out.to_str().unwrap().to_string();
        let mut args = vec!["run", f, "--out", &out, "--checkpoint-every", "3"];
        args.extend_from_slice(extra);
        pipe(&args).output().unwrap()
    };
    let clean = dir.path().join("clean");
    assert!(go(&clean, &[]).status.success());

    let killed = dir.path().join("killed");
    let out = killed.to_str().unwrap().to_string();
    let mut child = pipe(&["run", f, "--out", &out, "--checkpoint-every", "3"])
        .spawn()
        .unwrap();
    // 4 steps of `pre`, then 70 of `anneal`: inside its window (steps 60..120).
    wait_for_steps(&mut child, &killed, 74);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed inside the window"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let o = go(&killed, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        final_hashes_of(&clean, &["pre", "anneal"]),
        final_hashes_of(&killed, &["pre", "anneal"])
    );
    // What flowed on is the average, not the last step.
    assert_ne!(final_of(&clean, "model/lm/"), final_of(&clean, "raw/lm/"));
}

/// The held-out long-story loss that a stage growing its context takes at its end, with the
/// stage's averaging.
fn long_loss_end(dir: &Path, name: &str, averaging: &str) -> f64 {
    let phases =
        "phase short { budget = 3 steps }\n  phase long { budget = 3 steps, seq_len = 32 -> 64 }";
    let out = run(dir, name, 6, &format!("{averaging}\n  {phases}"));
    let rec = pipelang_runtime::record::RunRecord::load(&out.join("run.ron")).unwrap();
    rec.stage("anneal").unwrap().evals["long_loss_end"]
}

#[test]
fn the_held_out_loss_at_the_end_is_that_of_the_averaged_weights() {
    let dir = tempfile::tempdir().unwrap();
    let plain = long_loss_end(dir.path(), "plain", "");
    // A window of one step averages the last weights alone: the same loss, to the bit.
    let one = long_loss_end(dir.path(), "one", "average = last(1 steps)");
    // A window of four steps hands on (and is evaluated on) other weights.
    let four = long_loss_end(dir.path(), "four", "average = last(4 steps)");
    assert_eq!(one.to_bits(), plain.to_bits(), "{one} vs {plain}");
    assert_ne!(
        four, plain,
        "the four-step average was evaluated on the last weights"
    );
    assert!(four.is_finite());
}
