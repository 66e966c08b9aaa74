//! The server state and one function per request, testable without I/O: each takes the
//! request's params and returns its result.

use std::collections::HashMap;

use lsp_types::*;

use super::document::Document;
use super::{actions, complete, hover, outline, plan_view};

/// A request that cannot be served as asked (e.g. a rename to a name already taken).
#[derive(Debug, Clone)]
pub struct RequestError {
    pub code: lsp_server::ErrorCode,
    pub message: String,
}

impl RequestError {
    pub fn invalid(message: impl Into<String>) -> Self {
        RequestError {
            code: lsp_server::ErrorCode::InvalidParams,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        RequestError {
            code: lsp_server::ErrorCode::RequestFailed,
            message: message.into(),
        }
    }
}

const KEYWORDS: &[&str] = &[
    "pipeline", "model", "data", "schedule", "stage", "profile", "after", "then", "scale", "by",
];

#[derive(Default)]
pub struct Server {
    pub documents: HashMap<Uri, Document>,
    /// The plan of each file's last version without errors: inlay hints and the plan view keep
    /// showing it while an edit is half-typed.
    pub last_plans: HashMap<Uri, std::rc::Rc<pipelang::plan::Plan>>,
    /// The files the pipeline names, re-read only when they change.
    pub files: crate::document::FileReads,
}

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![
                "=".into(),
                "[".into(),
                "(".into(),
                ",".into(),
                " ".into(),
            ]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        experimental: Some(serde_json::json!({
            "planProvider": <plan_view::PlanRequest as request::Request>::METHOD
        })),
        ..Default::default()
    }
}

impl Server {
    // ------------------------------------------------------------------ notifications

    pub fn did_open(&mut self, p: DidOpenTextDocumentParams) -> PublishDiagnosticsParams {
        let d = p.text_document;
        self.set(d.uri, d.version, d.text)
    }

    /// Full sync: the last change holds the whole text.
    pub fn did_change(
        &mut self,
        p: DidChangeTextDocumentParams,
    ) -> Option<PublishDiagnosticsParams> {
        let text = p.content_changes.into_iter().last()?.text;
        Some(self.set(p.text_document.uri, p.text_document.version, text))
    }

    /// Clears the closed file's diagnostics.
    pub fn did_close(&mut self, p: DidCloseTextDocumentParams) -> PublishDiagnosticsParams {
        self.documents.remove(&p.text_document.uri);
        self.last_plans.remove(&p.text_document.uri);
        PublishDiagnosticsParams::new(p.text_document.uri, vec![], None)
    }

    fn set(&mut self, uri: Uri, version: i32, text: String) -> PublishDiagnosticsParams {
        let doc = Document::with_files(uri.clone(), version, text, &mut self.files);
        let params =
            PublishDiagnosticsParams::new(uri.clone(), doc.diagnostics.clone(), Some(version));
        if std::env::var_os("PIPE_LSP_TRACE").is_some() {
            eprintln!(
                "pipe lsp: {} v{version}: {} diagnostics in {:.3} ms",
                uri.as_str(),
                doc.diagnostics.len(),
                doc.analysis_time.as_secs_f64() * 1e3
            );
        }
        if let Some(plan) = doc.plan() {
            self.last_plans
                .insert(uri.clone(), std::rc::Rc::new(plan.clone()));
        }
        self.documents.insert(uri, doc);
        params
    }

    fn doc(&self, uri: &Uri) -> Option<&Document> {
        self.documents.get(uri)
    }

    fn at(&self, p: &TextDocumentPositionParams) -> Option<(&Document, usize)> {
        let doc = self.doc(&p.text_document.uri)?;
        let offset = doc.text().offset(p.position);
        Some((doc, offset))
    }

    // ------------------------------------------------------------------ requests

    pub fn hover(&self, p: HoverParams) -> Option<Hover> {
        let (doc, offset) = self.at(&p.text_document_position_params)?;
        let (markdown, span) = hover::hover(doc, offset)?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: markdown,
            }),
            range: Some(doc.text().range(span)),
        })
    }

    pub fn definition(&self, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let (doc, offset) = self.at(&p.text_document_position_params)?;
        let o = doc.names.at(offset)?;
        let decl = doc.names.decls.get(&o.name)?;
        let loc = Location::new(doc.uri.clone(), doc.text().range(decl.name_span));
        Some(GotoDefinitionResponse::Scalar(loc))
    }

    pub fn references(&self, p: ReferenceParams) -> Option<Vec<Location>> {
        let (doc, offset) = self.at(&p.text_document_position)?;
        let o = doc.names.at(offset)?;
        let with_decl = p.context.include_declaration;
        Some(
            doc.names
                .of(&o.name)
                .filter(|x| with_decl || !x.is_decl)
                .map(|x| Location::new(doc.uri.clone(), doc.text().range(x.span)))
                .collect(),
        )
    }

    pub fn prepare_rename(&self, p: TextDocumentPositionParams) -> Option<PrepareRenameResponse> {
        let (doc, offset) = self.at(&p)?;
        let o = doc.names.at(offset)?;
        Some(PrepareRenameResponse::RangeWithPlaceholder {
            range: doc.text().range(o.span),
            placeholder: o.name.clone(),
        })
    }

    pub fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>, RequestError> {
        let Some((doc, offset)) = self.at(&p.text_document_position) else {
            return Ok(None);
        };
        let Some(o) = doc.names.at(offset) else {
            return Ok(None);
        };
        let new = p.new_name.trim();
        let ident = new
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && new.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident || KEYWORDS.contains(&new) {
            return Err(RequestError::invalid(format!(
                "`{new}` is not a name: use letters, digits and `_`, not starting with a digit, and no keyword"
            )));
        }
        if new != o.name && doc.names.decls.contains_key(new) {
            return Err(RequestError::invalid(format!(
                "`{new}` is already declared: models, data, schedules and stages share one namespace"
            )));
        }
        let edits = doc
            .names
            .of(&o.name)
            .map(|x| TextEdit::new(doc.text().range(x.span), new.to_string()))
            .collect();
        Ok(Some(WorkspaceEdit {
            changes: Some(HashMap::from([(doc.uri.clone(), edits)])),
            ..Default::default()
        }))
    }

    pub fn completion(&self, p: CompletionParams) -> Option<CompletionResponse> {
        let (doc, offset) = self.at(&p.text_document_position)?;
        Some(CompletionResponse::Array(complete::complete(doc, offset)))
    }

    pub fn document_symbols(&self, p: DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
        let doc = self.doc(&p.text_document.uri)?;
        Some(DocumentSymbolResponse::Nested(outline::document_symbols(
            doc,
        )))
    }

    /// One edit replacing the whole text, none when it is already formatted.
    pub fn formatting(
        &self,
        p: DocumentFormattingParams,
    ) -> Result<Option<Vec<TextEdit>>, RequestError> {
        let Some(doc) = self.doc(&p.text_document.uri) else {
            return Ok(None);
        };
        let formatted = pipelang::fmt::format(&doc.text)
            .map_err(|e| RequestError::failed(format!("cannot format: {e}")))?;
        if formatted == doc.text {
            return Ok(Some(vec![]));
        }
        let whole = Range::new(Position::new(0, 0), doc.text().position(doc.text.len()));
        Ok(Some(vec![TextEdit::new(whole, formatted)]))
    }

    pub fn inlay_hints(&self, p: InlayHintParams) -> Option<Vec<InlayHint>> {
        let doc = self.doc(&p.text_document.uri)?;
        let plan = doc
            .plan()
            .or_else(|| self.last_plans.get(&p.text_document.uri).map(|p| &**p))?;
        Some(outline::inlay_hints(doc, plan, p.range))
    }

    pub fn code_actions(&self, p: CodeActionParams) -> Option<CodeActionResponse> {
        let doc = self.doc(&p.text_document.uri)?;
        Some(actions::code_actions(doc, &p))
    }

    /// `pipelang/plan`: the plan's picture, from the last version without errors when this
    /// one has some.
    pub fn plan_view(
        &self,
        p: plan_view::PlanParams,
    ) -> Result<plan_view::PlanResult, RequestError> {
        let Some(doc) = self.doc(&p.text_document.uri) else {
            return Err(RequestError::invalid(format!(
                "{} is not open: the plan is drawn for open documents",
                p.text_document.uri.as_str()
            )));
        };
        let last = self.last_plans.get(&p.text_document.uri).map(|p| &**p);
        Ok(plan_view::plan_view(doc, last, p.position))
    }
}
