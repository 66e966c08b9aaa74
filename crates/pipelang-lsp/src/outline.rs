//! Document symbols (the outline) and inlay hints (the LR at each stage's start and end).

use lsp_types::{DocumentSymbol, InlayHint, InlayHintKind, InlayHintLabel, Position, SymbolKind};

use super::document::Document;
use pipelang::check::units::{grouped, lr, tokens};
use pipelang::plan::Plan;
use pipelang::syntax::{Entry, Item, Span};

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be set, and is deprecated.
fn symbol(
    doc: &Document,
    name: &str,
    detail: Option<String>,
    kind: SymbolKind,
    range: Span,
    selection: Span,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    let t = doc.text();
    DocumentSymbol {
        name: if name.is_empty() {
            "?".into()
        } else {
            name.to_string()
        },
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: t.range(range),
        selection_range: t.range(selection),
        children: (!children.is_empty()).then_some(children),
    }
}

pub fn document_symbols(doc: &Document) -> Vec<DocumentSymbol> {
    let plan = doc.plan();
    doc.checked
        .file
        .items
        .iter()
        .map(|item| {
            let name = item.name();
            let (kind, detail, children) = match item {
                Item::Pipeline(_) => (SymbolKind::MODULE, Some("pipeline".to_string()), vec![]),
                Item::Model(m) => (
                    SymbolKind::CLASS,
                    Some(format!("model: {}", m.kind.name)),
                    vec![],
                ),
                Item::Data(d) => (
                    SymbolKind::STRUCT,
                    Some(format!("data: {}", d.kind.name)),
                    vec![],
                ),
                Item::Schedule(_) => (SymbolKind::FUNCTION, Some("schedule".to_string()), vec![]),
                Item::Profile(_) => (SymbolKind::NAMESPACE, Some("profile".to_string()), vec![]),
                Item::Mix(_) => (SymbolKind::ENUM, Some("mix".to_string()), vec![]),
                Item::Stage(s) => {
                    let sp = plan.and_then(|p| p.stage(&s.name.name));
                    let detail = match sp {
                        Some(sp) => {
                            format!("{} tokens, {} steps", tokens(sp.tokens), grouped(sp.steps))
                        }
                        None => "stage".to_string(),
                    };
                    let phases = s
                        .body
                        .entries
                        .iter()
                        .filter_map(|e| match e {
                            Entry::Block(b) if b.keyword.name == "phase" => {
                                let n = b.name.as_ref()?;
                                let steps = sp
                                    .and_then(|sp| {
                                        sp.phases
                                            .iter()
                                            .find(|p| p.name.as_deref() == Some(&n.name))
                                    })
                                    .map(|p| format!("{} steps", grouped(p.steps)));
                                Some(symbol(
                                    doc,
                                    &n.name,
                                    steps,
                                    SymbolKind::EVENT,
                                    b.span,
                                    n.span,
                                    vec![],
                                ))
                            }
                            _ => None,
                        })
                        .collect();
                    (SymbolKind::METHOD, Some(detail), phases)
                }
            };
            let range = item.span().join(name.span);
            symbol(doc, &name.name, detail, kind, range, name.span, children)
        })
        .collect()
}

/// `LR 0 → 4e-4` at the end of each stage's header line (the line of its `{`).
/// `plan` may be an earlier version's: hints sit on this version's stages that it knows.
pub fn inlay_hints(doc: &Document, plan: &Plan, range: lsp_types::Range) -> Vec<InlayHint> {
    let t = doc.text();
    doc.checked
        .file
        .items
        .iter()
        .filter_map(|item| {
            let Item::Stage(s) = item else { return None };
            let sp = plan.stage(&s.name.name)?;
            let line = doc.index.line(s.body.span.start);
            if (line as u32) < range.start.line || (line as u32) > range.end.line {
                return None;
            }
            let end = t.line_text(line).encode_utf16().count() as u32;
            Some(InlayHint {
                position: Position::new(line as u32, end),
                label: InlayHintLabel::String(format!(
                    "LR {} → {}",
                    lr(sp.lr.start),
                    lr(sp.lr.end)
                )),
                kind: Some(InlayHintKind::PARAMETER),
                text_edits: None,
                tooltip: None,
                padding_left: Some(true),
                padding_right: None,
                data: None,
            })
        })
        .collect()
}
