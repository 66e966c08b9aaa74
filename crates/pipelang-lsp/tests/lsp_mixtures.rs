//! Named mixtures in the language server: definition, hover, references, rename and
//! completion, over an in-memory connection.

mod lsp_support;

use lsp_support::{Client, pos, uri};
use serde_json::{Value, json};

const TEXT: &str = r#"pipeline t { seed = 1, batch = 4, seq_len = 1K }
model lm = decoder { vocab = 512, d_model = 64, layers = 2, heads = 4 }
data web   = text("web/*.jsonl")
data code  = text("code/*.jsonl")
data books = text("books/*.jsonl")
mix base { web = 70%, code = rest }
stage stage1 { train = [lm], budget = 4M, lr = constant(1e-4), mix = base }
stage long after stage1 {
  train  = [lm]
  budget = 4M
  lr     = constant(1e-5)
  mix    { books = 40%, base = rest }
}
"#;

fn labels(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_mixture_name_goes_to_its_declaration_and_hovers_with_its_users() {
    assert!(pipelang::check::check(TEXT).diagnostics.is_empty());
    let mut c = Client::start();
    let u = uri("mix.pipe");
    c.open(&u, TEXT);
    for use_ in ["mix = base", "base = rest"] {
        let at = use_.find("base").unwrap();
        let d = c.at("textDocument/definition", &u, pos(TEXT, use_, 0, at + 1));
        assert_eq!(
            d["range"]["start"],
            pos(TEXT, "mix base", 0, 4),
            "from {use_:?}"
        );
    }
    let h = c.at("textDocument/hover", &u, pos(TEXT, "base = rest", 0, 1));
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(md.contains("A mixture `base`"), "{md}");
    assert!(md.contains("used by `stage1`, `long`"), "{md}");
    assert!(md.contains("mix base { web = 70%, code = rest }"), "{md}");

    let edit = c.request(
        "textDocument/rename",
        json!({ "textDocument": { "uri": u }, "position": pos(TEXT, "mix base", 0, 5), "newName": "web_mix" }),
    );
    let edits = edit["changes"][u.as_str()].as_array().unwrap();
    assert_eq!(
        edits.len(),
        3,
        "declaration, `mix = base` and the entry: {edits:?}"
    );
    c.shutdown();
}

#[test]
fn completion_offers_mixtures_where_they_fit() {
    let mut c = Client::start();
    let u = uri("mix.pipe");
    c.open(&u, TEXT);
    let at = |c: &mut Client, edited: &str, marker: &str| -> Vec<String> {
        c.change(&u, 2, edited);
        labels(&c.at(
            "textDocument/completion",
            &u,
            pos(edited, marker, 0, marker.len()),
        ))
    };
    // After `mix =`: named mixtures and stages (a stage stands for its mixture).
    let edited = TEXT.replacen("mix = base }", "mix =  }", 1);
    let got = at(&mut c, &edited, "mix = ");
    assert_eq!(got, ["base", "stage1", "long"]);
    // An entry of a mixture: sources, mixtures and stages.
    let edited = TEXT.replacen("books = 40%, ", "books = 40%, \n", 1);
    let got = at(&mut c, &edited, "books = 40%, \n");
    assert_eq!(got, ["web", "code", "books", "base", "stage1", "long"]);
    // At the top: `mix` is an item keyword.
    let edited = format!("{TEXT}mi");
    let got = at(&mut c, &edited, "}\nmi");
    assert!(got.contains(&"mix".to_string()), "{got:?}");
    c.shutdown();
}
