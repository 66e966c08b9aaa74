//! Quick fixes: every fix the checker attached to a diagnostic that touches the requested range,
//! as a code action carrying that diagnostic (so the editor shows it on the squiggle).

use std::collections::HashMap;

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, Range, TextEdit,
    WorkspaceEdit,
};

use super::document::Document;

fn touches(a: Range, b: Range) -> bool {
    a.start <= b.end && b.start <= a.end
}

pub fn code_actions(doc: &Document, p: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let wants_quickfix = p.context.only.as_ref().is_none_or(|only| {
        only.iter()
            .any(|k| CodeActionKind::QUICKFIX.as_str().starts_with(k.as_str()))
    });
    if !wants_quickfix {
        return vec![];
    }
    let t = doc.text();
    let mut out = vec![];
    // `checked.diagnostics` and `diagnostics` are the same list, before and after conversion.
    for (d, shown) in doc.checked.diagnostics.iter().zip(&doc.diagnostics) {
        if !touches(shown.range, p.range) {
            continue;
        }
        for (i, fix) in d.fixes.iter().enumerate() {
            let edits = fix
                .edits
                .iter()
                .map(|e| TextEdit::new(t.range(e.span), e.text.clone()))
                .collect();
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: fix.message.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![shown.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(doc.uri.clone(), edits)])),
                    ..Default::default()
                }),
                is_preferred: Some(i == 0),
                ..Default::default()
            }));
        }
    }
    out
}
