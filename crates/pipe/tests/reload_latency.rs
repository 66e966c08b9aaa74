//! Benchmark (ignored by default): time from writing an edited reference recipe to the change
//! being checked, compared with the running plan and queued by the watcher. Goal: < 100 ms.
//!
//! cargo test --test reload_latency -- --ignored --nocapture

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipelang::reload::{Outcome, Progress, evaluate};
use pipelang_runtime::setup;
use pipelang_runtime::watch::{Log, Target, Watch};

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms over {} edits",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

#[test]
#[ignore]
fn write_to_queued_latency_on_the_reference_recipe() {
    let src = std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kimi_vl.pipe");
    std::fs::write(&file, &src).unwrap();
    let prep = std::sync::Arc::new(setup::prepare(&file, None, src.clone()).unwrap());
    // Text pre-training is running; the cooldown is being decided.
    let progress = Progress {
        done: vec!["vit_coca".into()],
        running: Some("text_pretrain".into()),
    };
    let edits: Vec<String> = [("3e-4", "0.8T"), ("2.5e-4", "0.7T")]
        .iter()
        .map(|(peak, budget)| {
            src.replace("rewarmup(to = 2e-4", &format!("rewarmup(to = {peak}"))
                .replace("budget = 0.6T", &format!("budget = {budget}"))
        })
        .collect();

    let pipeline = prep.checked.pipeline.clone().unwrap();
    let mut eval_ms = vec![];
    for e in &edits {
        for _ in 0..10 {
            let t0 = Instant::now();
            let outcome = evaluate(&prep.plan, &pipeline, &progress, e, None);
            eval_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
        }
    }

    let quiet: Log = Arc::new(|_| {});
    let target = Target {
        file: file.clone(),
        profile: None,
        out: dir.path().to_path_buf(),
        color: false,
    };
    let watch = Watch::start(target, &prep, progress, quiet).unwrap();
    let mut total_ms = vec![];
    for i in 0..20 {
        let text = &edits[i % 2];
        let t0 = Instant::now();
        std::fs::write(&file, text).unwrap();
        let queued = loop {
            if let Some(q) = watch.queued().filter(|q| &q.source == text) {
                break q;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "edit {i} never queued"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        total_ms.push(queued.at.duration_since(t0).as_secs_f64() * 1e3);
        assert!(
            queued.changes[0].starts_with("joint_cooldown: "),
            "{:?}",
            queued.changes
        );
    }
    println!("reload latency, kimi_vl.pipe (full scale, 6 stages):");
    println!(
        "  evaluate (check + plan + rules + diff): {}",
        stats(eval_ms)
    );
    println!(
        "  file write -> checked and queued:       {}",
        stats(total_ms)
    );
}
