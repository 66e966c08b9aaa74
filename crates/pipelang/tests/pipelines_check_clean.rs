//! Every recipe shipped in `pipelines/` checks clean, with and without each of its profiles:
//! no error and no warning. Notes (advice) are allowed, and all of them are snapshotted, so a
//! new one is seen and read in review.

use pipelang::check::check_with;
use pipelang::diag::{Diagnostic, Severity};

fn not_notes(diags: &[Diagnostic]) -> Vec<Diagnostic> {
    diags
        .iter()
        .filter(|d| d.severity != Severity::Advice)
        .cloned()
        .collect()
}

#[test]
fn every_shipped_pipeline_checks_clean() {
    let mut count = 0;
    let mut notes = String::new();
    let mut paths: Vec<_> = std::fs::read_dir(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines"
    ))
    .unwrap()
    .map(|e| e.unwrap().path())
    .collect();
    paths.sort();
    for path in paths {
        if path.extension().is_none_or(|e| e != "pipe") {
            continue;
        }
        count += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        let base = check_with(&source, None);
        let name = format!("pipelines/{}", path.file_name().unwrap().to_string_lossy());
        let rendered =
            pipelang::diag::render_human_plain(&not_notes(&base.diagnostics), &name, &source);
        assert!(
            not_notes(&base.diagnostics).is_empty(),
            "{} has diagnostics:\n{rendered}",
            path.display()
        );
        assert!(base.plan().is_some(), "{} has no plan", path.display());
        let advice: Vec<Diagnostic> = base
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Advice)
            .cloned()
            .collect();
        if !advice.is_empty() {
            notes.push_str(&pipelang::diag::render_human_plain(&advice, &name, &source));
            notes.push('\n');
        }
        for prof in &base.pipeline.as_ref().unwrap().profiles {
            let c = check_with(&source, Some(&prof.name));
            assert!(
                not_notes(&c.diagnostics).is_empty(),
                "{} with profile {}",
                path.display(),
                prof.name
            );
            assert_eq!(
                c.pipeline.as_ref().unwrap().profile.as_deref(),
                Some(prof.name.as_str())
            );
        }
    }
    assert!(
        count >= 3,
        "expected the reference and at least two more recipes, found {count}"
    );
    insta::assert_snapshot!("shipped_pipeline_notes", notes);
}

#[test]
fn reference_is_the_shared_recipe_with_its_profile_made_concrete() {
    // The recipe is copied as written; only the sketched profile block at its end may differ.
    let ours = std::fs::read_to_string(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines/kimi_vl.pipe"
    ))
    .unwrap();
    let cut = |s: &str| s.split("profile smoke").next().unwrap().to_string();
    let reference = concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/../shared/reference/kimi_vl.pipe"
    );
    if let Ok(theirs) = std::fs::read_to_string(reference) {
        assert_eq!(cut(&ours), cut(&theirs));
    }
    assert!(ours.contains("profile smoke"));
}
