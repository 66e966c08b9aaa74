//! `pipe lsp` over an in-memory connection: every feature, request by request. Each request
//! must be answered (with its own id) within the timeout; shutdown must end the server.

mod lsp_support;

use lsp_support::{Client, pos, problems, reference, uri};
use serde_json::{Value, json};

fn codes(diags: &Value) -> Vec<String> {
    diags["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn diagnostics_on_open_and_change_match_pipe_check() {
    let mut c = Client::start();
    let u = uri("kimi.pipe");
    let good = reference();
    let d = c.open(&u, &good);
    assert_eq!(
        problems(&d),
        Vec::<Value>::new(),
        "the reference recipe is clean"
    );
    // Its notes are information, each the P0510 of a `resume` that stretches a schedule.
    let notes = d["diagnostics"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes
            .iter()
            .all(|n| n["code"] == "P0510" && n["severity"] == 3)
    );
    assert_eq!(d["version"], 1);

    let broken = good.replacen("train  = [llm]", "train  = [lmm]", 1);
    let d = c.change(&u, 2, &broken);
    assert_eq!(d["version"], 2);
    let checked = pipelang::check::check(&broken);
    let want: Vec<String> = checked
        .diagnostics
        .iter()
        .map(|d| d.code.0.to_string())
        .collect();
    assert_eq!(codes(&d), want);
    let i = checked
        .diagnostics
        .iter()
        .position(|d| d.code.0 == "P0101")
        .expect("an undeclared name");
    let first = &d["diagnostics"][i];
    assert_eq!(first["code"], "P0101");
    assert_eq!(first["severity"], 1);
    assert_eq!(first["source"], "pipe");
    let msg = first["message"].as_str().unwrap();
    assert!(msg.starts_with(&checked.diagnostics[i].message), "{msg}");
    if let Some(help) = &checked.diagnostics[i].help {
        assert!(msg.contains(help.as_str()), "help not carried: {msg}");
    }
    assert_eq!(first["range"]["start"], pos(&broken, "lmm", 0, 0));
    assert_eq!(first["range"]["end"], pos(&broken, "lmm", 0, 3));

    // Related spans: a duplicate declaration points at the first one.
    let dup = good.replacen(
        "data ocr           =",
        "data ocr = text(\"x\")\ndata ocr           =",
        1,
    );
    let d = c.change(&u, 3, &dup);
    let diag = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "P0102")
        .expect("a duplicate-declaration diagnostic");
    let related = diag["relatedInformation"].as_array().unwrap();
    assert!(
        related.iter().any(|r| r["message"] == "first declared here"
            && r["location"]["range"]["start"] == pos(&dup, "ocr", 0, 0)
            && r["location"]["uri"] == u.as_str()),
        "{diag}"
    );

    c.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": u } }),
    );
    assert_eq!(c.diagnostics(&u)["diagnostics"], json!([]));
    c.shutdown();
}

#[test]
fn hover_on_stage_phase_number_and_reference() {
    let mut c = Client::start();
    let u = uri("kimi.pipe");
    let text = reference();
    c.open(&u, &text);

    let h = c.at(
        "textDocument/hover",
        &u,
        pos(&text, "stage text_pretrain", 0, 7),
    );
    assert_eq!(h["contents"]["kind"], "markdown");
    let md = h["contents"]["value"].as_str().unwrap();
    let checked = pipelang::check::check(&text);
    let plan = checked.plan().cloned().unwrap();
    let s = plan.stage("text_pretrain").unwrap();
    use pipelang::check::units::grouped;
    for want in [
        grouped(s.steps),
        grouped(s.tokens_per_step),
        "5,200,000,000,000".to_string(),
        pipelang::check::units::lr(s.lr.start),
        pipelang::check::units::lr(s.lr.end),
        "seq_len**: 8K".into(),
        "web_text 100%".into(),
        "llm): 50,000".into(),
    ] {
        assert!(md.contains(&want), "stage hover lacks {want:?}:\n{md}");
    }
    // The first step, as Plan::step (what the trainer reads) gives it.
    let at = plan.step(plan.stage_index("text_pretrain").unwrap(), 0);
    let first = format!(
        "**first step**: LR {}, batch {} × seq_len 8K, RoPE llm 50,000",
        pipelang::check::units::lr(at.lr),
        grouped(at.batch)
    );
    assert!(md.contains(&first), "stage hover lacks {first:?}:\n{md}");

    let h = c.at(
        "textDocument/hover",
        &u,
        pos(&text, "stage joint_pretrain", 0, 8),
    );
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(
        md.contains("mixture at start") && md.contains("mixture at end"),
        "{md}"
    );
    assert!(
        md.contains("multimodal") || md.contains("image_text 20%"),
        "{md}"
    );

    let h = c.at("textDocument/hover", &u, pos(&text, "ctx_128k", 0, 2));
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(
        md.contains("phase `ctx_128k`") && md.contains("128K"),
        "{md}"
    );

    let h = c.at("textDocument/hover", &u, pos(&text, "5.2T", 0, 1));
    assert_eq!(h["contents"]["value"], "`5.2T` = 5,200,000,000,000 tokens");
    assert_eq!(h["range"]["start"], pos(&text, "5.2T", 0, 0));
    let h = c.at("textDocument/hover", &u, pos(&text, "8K", 0, 0));
    assert!(
        h["contents"]["value"].as_str().unwrap().contains("= 8,192"),
        "{h}"
    );

    // A reference shows its declaration.
    let h = c.at(
        "textDocument/hover",
        &u,
        pos(&text, "lr     = llm_lr", 0, 10),
    );
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(
        md.contains("schedule llm_lr = wsd(") && md.contains("declared on line"),
        "{md}"
    );

    // Nothing to say between tokens: a null result, still answered.
    let h = c.at(
        "textDocument/hover",
        &u,
        json!({ "line": 1, "character": 0 }),
    );
    assert!(h.is_null());
    c.shutdown();
}

#[test]
fn definition_references_and_rename() {
    let mut c = Client::start();
    let u = uri("kimi.pipe");
    let text = reference();
    c.open(&u, &text);

    let d = c.at(
        "textDocument/definition",
        &u,
        pos(&text, "train  = [llm]", 0, 11),
    );
    assert_eq!(d["uri"], u.as_str());
    assert_eq!(d["range"]["start"], pos(&text, "model llm", 0, 6));

    // (text around a use, where the name starts in it, its declaration)
    for (use_, at, decl) in [
        ("data   = web_text", 9, "data web_text"),
        ("resume(llm_lr)", 7, "schedule llm_lr"),
        ("after vit_coca", 6, "stage vit_coca"),
        ("web_text   = rest", 0, "data web_text"),
        ("model vit             {", 6, "model vit ="),
        ("projector(vit -> llm)", 17, "model llm"),
    ] {
        let d = c.at("textDocument/definition", &u, pos(&text, use_, 0, at + 1));
        let kw = decl.split(' ').next().unwrap().len() + 1;
        assert_eq!(
            d["range"]["start"],
            pos(&text, decl, 0, kw),
            "definition from {use_:?}"
        );
    }

    let refs = c.request(
        "textDocument/references",
        json!({ "textDocument": { "uri": u }, "position": pos(&text, "model projector", 0, 7),
                "context": { "includeDeclaration": true } }),
    );
    let n_projector = text.matches("projector").count() - 2; // `= projector(` kind and the comment-free body
    let refs = refs.as_array().unwrap();
    assert!(refs.len() >= 4, "{refs:?}");
    assert!(refs.len() <= n_projector + 1);
    let no_decl = c.request(
        "textDocument/references",
        json!({ "textDocument": { "uri": u }, "position": pos(&text, "model projector", 0, 7),
                "context": { "includeDeclaration": false } }),
    );
    assert_eq!(no_decl.as_array().unwrap().len(), refs.len() - 1);

    let prep = c.at(
        "textDocument/prepareRename",
        &u,
        pos(&text, "hq_text ", 0, 2),
    );
    assert_eq!(prep["placeholder"], "hq_text");
    let edit = c.request(
        "textDocument/rename",
        json!({ "textDocument": { "uri": u }, "position": pos(&text, "hq_text ", 0, 2), "newName": "curated" }),
    );
    let edits = edit["changes"][u.as_str()].as_array().unwrap();
    assert_eq!(
        edits.len(),
        3,
        "declaration and two mixture entries: {edits:?}"
    );
    let mut renamed = text.clone();
    let mut offsets: Vec<(usize, usize)> = edits
        .iter()
        .map(|e| offset(&text, &e["range"]["start"]))
        .zip(edits.iter().map(|e| offset(&text, &e["range"]["end"])))
        .collect();
    offsets.sort();
    for (a, b) in offsets.into_iter().rev() {
        renamed.replace_range(a..b, "curated");
    }
    assert!(!renamed.contains("hq_text"));
    // The reference's notes (P0510) stay; nothing else may appear.
    let after: Vec<_> = pipelang::check::check(&renamed)
        .diagnostics
        .into_iter()
        .map(|d| d.code.as_str())
        .collect();
    let before: Vec<_> = pipelang::check::check(&text)
        .diagnostics
        .into_iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(after, before);

    // Renaming onto a taken name or a keyword is refused with a message.
    for bad in ["llm", "stage", "9x", "a b"] {
        let r = c.request_raw(
            "textDocument/rename",
            json!({ "textDocument": { "uri": u }, "position": pos(&text, "hq_text ", 0, 2), "newName": bad }),
        );
        assert!(r.is_err(), "renaming to {bad:?} was accepted");
    }
    c.shutdown();
}

fn offset(text: &str, p: &Value) -> usize {
    let line = p["line"].as_u64().unwrap() as usize;
    let col = p["character"].as_u64().unwrap() as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    let mut units = 0;
    for (i, ch) in text[start..].char_indices() {
        if units >= col {
            return start + i;
        }
        units += ch.len_utf16();
    }
    text.len()
}

fn labels(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn completion_offers_what_fits_the_cursor() {
    let mut c = Client::start();
    let u = uri("kimi.pipe");
    let text = reference();
    c.open(&u, &text);
    let at = |c: &mut Client, edited: &str, marker: &str| -> Vec<String> {
        let v = c.change(&u, 2, edited);
        let _ = v;
        labels(&c.at(
            "textDocument/completion",
            &u,
            pos(edited, marker, 0, marker.len()),
        ))
    };

    let inside_stage = text.replacen("  budget = 5.2T\n", "  budget = 5.2T\n  bu\n", 1);
    let got = at(&mut c, &inside_stage, "  bu");
    for f in ["budget", "lr", "seq_len", "mix", "phase", "train"] {
        assert!(
            got.contains(&f.to_string()),
            "stage fields lack {f}: {got:?}"
        );
    }
    assert!(!got.contains(&"vocab".to_string()), "{got:?}");

    let train = text.replacen("  train  = [llm]\n", "  train  = [llm, \n", 1);
    let got = at(&mut c, &train, "[llm, ");
    assert_eq!(got, ["llm", "vit", "projector", "caption_decoder"]);

    let data = text.replacen("  data   = web_text\n", "  data   = \n", 1);
    let got = at(&mut c, &data, "  data   = ");
    assert!(
        got.contains(&"web_text".into()) && got.contains(&"long_doc".into()),
        "{got:?}"
    );
    assert!(!got.contains(&"llm".into()), "{got:?}");

    let after = text.replacen(
        "stage joint_cooldown after joint_pretrain {",
        "stage joint_cooldown after  {",
        1,
    );
    let got = at(&mut c, &after, "joint_cooldown after ");
    assert!(
        got.contains(&"text_pretrain".into()) && !got.contains(&"web_text".into()),
        "{got:?}"
    );

    let resume = text.replacen("resume(llm_lr)", "resume()", 1);
    let got = at(&mut c, &resume, "resume(");
    assert!(
        got.contains(&"llm_lr".into()) && got.contains(&"vit_coca".into()),
        "{got:?}"
    );
    assert!(!got.contains(&"llm".into()), "{got:?}");

    let model = text.replacen("  patch   = 14\n", "  patch   = 14\n  ma\n", 1);
    let got = at(&mut c, &model, "  ma");
    assert!(
        got.contains(&"max_image_side".into()) && !got.contains(&"vocab".into()),
        "{got:?}"
    );

    let top = format!("{text}\n");
    c.change(&u, 3, &top);
    let got_top = labels(&c.at(
        "textDocument/completion",
        &u,
        json!({ "line": top.lines().count(), "character": 0 }),
    ));
    assert!(
        got_top.contains(&"stage".into()) && got_top.contains(&"profile".into()),
        "{got_top:?}"
    );
    c.shutdown();
}

#[test]
fn outline_inlay_hints_and_formatting() {
    let mut c = Client::start();
    let u = uri("kimi.pipe");
    let text = reference();
    c.open(&u, &text);

    let syms = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": u } }),
    );
    let syms = syms.as_array().unwrap();
    let names: Vec<&str> = syms.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "kimi_vl");
    for n in [
        "llm",
        "web_text",
        "llm_lr",
        "vit_coca",
        "joint_long_context",
        "smoke",
    ] {
        assert!(names.contains(&n), "outline lacks {n}: {names:?}");
    }
    let long = syms
        .iter()
        .find(|s| s["name"] == "joint_long_context")
        .unwrap();
    let phases: Vec<&str> = long["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["ctx_32k", "ctx_128k"]);

    let hints = c.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": u }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 999, "character": 0 } } }),
    );
    let hints = hints.as_array().unwrap();
    assert_eq!(hints.len(), 6, "one per stage: {hints:?}");
    let plan = pipelang::check::check(&text).into_plan().unwrap();
    let tp = plan.stage("text_pretrain").unwrap();
    let want = format!(
        "LR {} → {}",
        pipelang::check::units::lr(tp.lr.start),
        pipelang::check::units::lr(tp.lr.end)
    );
    let line = text
        .lines()
        .position(|l| l == "stage text_pretrain {")
        .unwrap();
    let h = hints
        .iter()
        .find(|h| h["position"]["line"] == line)
        .expect("hint on text_pretrain's line");
    assert_eq!(h["label"], want.as_str());
    assert_eq!(h["position"]["character"], "stage text_pretrain {".len());

    let formatted = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": u }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(
        formatted,
        json!([]),
        "the reference recipe is already formatted"
    );
    let ugly = text.replace("  seed    = 2025", "seed=2025");
    c.change(&u, 2, &ugly);
    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": u }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits[0]["newText"], text.as_str());
    assert_eq!(
        edits[0]["range"]["start"],
        json!({ "line": 0, "character": 0 })
    );

    let broken = text.replacen("  batch   = 512", "  batch   512", 1);
    c.change(&u, 3, &broken);
    let err = c
        .request_raw("textDocument/formatting", json!({ "textDocument": { "uri": u }, "options": { "tabSize": 2, "insertSpaces": true } }))
        .unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("line 9"), "{err}");
    c.shutdown();
}

/// Positions count UTF-16 units: an emoji in a string is two units, `é` one.
#[test]
fn utf16_positions_after_non_ascii_text() {
    let mut c = Client::start();
    let u = uri("utf16.pipe");
    let text = reference()
        .replacen(
            "pipeline kimi_vl {",
            "// réglage 😀 initial\npipeline kimi_vl {",
            1,
        )
        .replacen(
            "  seq_len = 8K ",
            "  sample_data = \"é😀\", seq_len = 8K ",
            1,
        )
        .replacen(
            "  train  = [llm]",
            "  // Ünïcödé 😀 before a reference\n  train  = [llm]",
            1,
        );
    let d = c.open(&u, &text);
    assert_eq!(problems(&d), Vec::<Value>::new(), "{d}");
    let p = pos(&text, "= 8K ", 0, 2);
    let line = text
        .lines()
        .nth(p["line"].as_u64().unwrap() as usize)
        .unwrap();
    let byte_col = line.find("8K").unwrap();
    assert_ne!(
        p["character"].as_u64().unwrap() as usize,
        byte_col,
        "the test needs a line where bytes and UTF-16 differ"
    );
    let h = c.at("textDocument/hover", &u, p.clone());
    assert!(
        h["contents"]["value"]
            .as_str()
            .unwrap()
            .starts_with("`8K` in a length"),
        "{h}"
    );
    assert_eq!(h["range"]["start"], p);

    let d = c.at(
        "textDocument/definition",
        &u,
        pos(&text, "train  = [llm]", 0, 11),
    );
    assert_eq!(d["range"]["start"], pos(&text, "model llm", 0, 6));

    // A diagnostic after the non-ASCII string lands on the right UTF-16 columns.
    let bad = text.replacen("seq_len = 8K ", "seq_len = 8Q ", 1);
    let d = c.change(&u, 2, &bad);
    let first = &d["diagnostics"][0];
    assert_eq!(first["code"], "P0001");
    assert_eq!(first["range"]["start"], pos(&bad, "8Q", 0, 1), "{first}");
    c.shutdown();
}

/// Half-typed files: every prefix of the reference recipe (by lines, and cut inside lines)
/// gets diagnostics and answers to every request, with no error response.
#[test]
fn half_typed_files_never_break_the_server() {
    let mut c = Client::start();
    let u = uri("typing.pipe");
    let text = reference();
    c.open(&u, "");
    let mut version = 1;
    let cuts: Vec<usize> = (0..text.len())
        .step_by(97)
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    for cut in cuts {
        version += 1;
        let part = &text[..cut];
        c.change(&u, version, part);
        let lines = part.lines().count().max(1);
        let end = json!({ "line": lines - 1, "character": part.lines().last().map_or(0, |l| l.encode_utf16().count()) });
        for method in [
            "textDocument/hover",
            "textDocument/definition",
            "textDocument/completion",
            "textDocument/prepareRename",
        ] {
            c.at(method, &u, end.clone());
        }
        c.request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": u } }),
        );
        c.request(
            "textDocument/inlayHint",
            json!({ "textDocument": { "uri": u }, "range": { "start": { "line": 0, "character": 0 }, "end": end } }),
        );
        let _ = c.request_raw("textDocument/formatting", json!({ "textDocument": { "uri": u }, "options": { "tabSize": 2, "insertSpaces": true } }));
        // Positions past the end clamp.
        c.at(
            "textDocument/hover",
            &u,
            json!({ "line": 10_000, "character": 10_000 }),
        );
    }
    // Requests about a document never opened are answered with null.
    assert!(
        c.at(
            "textDocument/hover",
            &uri("unknown.pipe"),
            json!({ "line": 0, "character": 0 })
        )
        .is_null()
    );
    // An unknown method gets an error response, not silence.
    assert!(c.request_raw("pipe/unknown", json!({})).is_err());
    c.shutdown();
}

#[test]
fn hover_on_a_field_shows_its_schema_entry() {
    let mut c = Client::start();
    let u = uri("kimi.pipe");
    let text = reference();
    c.open(&u, &text);
    let h = c.at(
        "textDocument/hover",
        &u,
        pos(&text, "  rope_base      = 50_000", 0, 3),
    );
    let md = h["contents"]["value"].as_str().unwrap();
    let f = pipelang::schema::decoder::ROPE_BASE;
    assert!(md.contains("**`rope_base`** of a decoder"), "{md}");
    assert!(md.contains(&f.missing.docs()) && md.contains(f.doc), "{md}");
    assert!(md.contains("scale rope_base by F"), "{md}");
    c.shutdown();
}
