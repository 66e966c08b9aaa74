//! Every recipe shipped in `pipelines/` checks clean, with and without each of its profiles.

use pipelang::check::check_with;

#[test]
fn every_shipped_pipeline_checks_clean() {
    let mut count = 0;
    for entry in std::fs::read_dir(concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/pipelines"
    ))
    .unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pipe") {
            continue;
        }
        count += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        let base = check_with(&source, None);
        let rendered = pipelang::diag::render_human_plain(
            &base.diagnostics,
            &path.display().to_string(),
            &source,
        );
        assert!(
            base.diagnostics.is_empty(),
            "{} has diagnostics:\n{rendered}",
            path.display()
        );
        assert!(base.plan.is_some(), "{} has no plan", path.display());
        for prof in &base.pipeline.as_ref().unwrap().profiles {
            let c = check_with(&source, Some(&prof.name));
            assert!(
                c.diagnostics.is_empty(),
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
