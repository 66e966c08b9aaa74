//! `pipe lsp`: a language server over stdio (lsp-server + lsp-types, like rust-analyzer),
//! built on the same `check()`, planner and formatter as the command line.
//!
//! `Server` holds the open documents and has one method per request; `run` is the message
//! loop around it. The loop is single-threaded: a recipe checks in well under a millisecond,
//! so there is nothing to cancel, and every request gets its response in order.

mod actions;
mod complete;
mod convert;
mod document;
mod hover;
mod names;
mod outline;
mod plan_view;
mod server;

use std::panic::{AssertUnwindSafe, catch_unwind};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use complete::{ITEM_KEYWORDS, complete};
pub use document::Document;
pub use plan_view::{PlanParams, PlanRequest, PlanResult};
pub use server::{RequestError, Server, capabilities};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Serves on stdin/stdout until the client shuts the server down.
pub fn run_stdio() -> Result<(), Error> {
    let (connection, io) = Connection::stdio();
    run(&connection)?;
    drop(connection);
    io.join()?;
    Ok(())
}

/// The initialize handshake, then the message loop until `shutdown` + `exit` (or the client
/// closes the connection).
pub fn run(connection: &Connection) -> Result<(), Error> {
    let caps = serde_json::to_value(capabilities())?;
    let (id, _params) = connection.initialize_start()?;
    connection.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": caps,
            "serverInfo": { "name": "pipe lsp", "version": env!("CARGO_PKG_VERSION") },
        }),
    )?;
    let mut server = Server::default();
    for msg in &connection.receiver {
        match msg {
            Message::Request(r) => {
                if connection.handle_shutdown(&r)? {
                    return Ok(());
                }
                let response = handle_request(&mut server, r);
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(n) => {
                if n.method == notif::Exit::METHOD {
                    return Ok(());
                }
                if let Some(out) = handle_notification(&mut server, n) {
                    connection.sender.send(Message::Notification(out))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

/// Every request gets a response: a result, an error saying what was wrong, or (should a
/// handler panic, which is a bug) an internal error instead of a dead server.
pub fn handle_request(server: &mut Server, r: Request) -> Response {
    let id = r.id.clone();
    let method = r.method.clone();
    match catch_unwind(AssertUnwindSafe(|| dispatch(server, r))) {
        Ok(Ok(value)) => Response {
            id,
            result: Some(value),
            error: None,
        },
        Ok(Err(e)) => Response::new_err(id, e.code as i32, e.message),
        Err(_) => Response::new_err(
            id,
            ErrorCode::InternalError as i32,
            format!("pipe lsp hit a bug while answering {method}; please report it"),
        ),
    }
}

fn dispatch(s: &mut Server, r: Request) -> Result<serde_json::Value, RequestError> {
    match r.method.as_str() {
        req::HoverRequest::METHOD => call::<req::HoverRequest>(r, |p| Ok(s.hover(p))),
        req::GotoDefinition::METHOD => call::<req::GotoDefinition>(r, |p| Ok(s.definition(p))),
        req::References::METHOD => call::<req::References>(r, |p| Ok(s.references(p))),
        req::PrepareRenameRequest::METHOD => {
            call::<req::PrepareRenameRequest>(r, |p| Ok(s.prepare_rename(p)))
        }
        req::Rename::METHOD => call::<req::Rename>(r, |p| s.rename(p)),
        req::Completion::METHOD => call::<req::Completion>(r, |p| Ok(s.completion(p))),
        req::DocumentSymbolRequest::METHOD => {
            call::<req::DocumentSymbolRequest>(r, |p| Ok(s.document_symbols(p)))
        }
        req::Formatting::METHOD => call::<req::Formatting>(r, |p| s.formatting(p)),
        req::InlayHintRequest::METHOD => call::<req::InlayHintRequest>(r, |p| Ok(s.inlay_hints(p))),
        req::CodeActionRequest::METHOD => {
            call::<req::CodeActionRequest>(r, |p| Ok(s.code_actions(p)))
        }
        plan_view::PlanRequest::METHOD => call::<plan_view::PlanRequest>(r, |p| s.plan_view(p)),
        other => Err(RequestError {
            code: ErrorCode::MethodNotFound,
            message: format!("pipe lsp does not implement {other}"),
        }),
    }
}

fn call<R: req::Request>(
    r: Request,
    f: impl FnOnce(R::Params) -> Result<R::Result, RequestError>,
) -> Result<serde_json::Value, RequestError>
where
    R::Params: DeserializeOwned,
    R::Result: Serialize,
{
    let params: R::Params = serde_json::from_value(r.params)
        .map_err(|e| RequestError::invalid(format!("bad params for {}: {e}", R::METHOD)))?;
    let result = f(params)?;
    serde_json::to_value(result).map_err(|e| RequestError::failed(e.to_string()))
}

/// Document changes answer with the file's diagnostics; other notifications need no answer.
pub fn handle_notification(server: &mut Server, n: Notification) -> Option<Notification> {
    let published = catch_unwind(AssertUnwindSafe(|| match n.method.as_str() {
        notif::DidOpenTextDocument::METHOD => {
            let p = serde_json::from_value(n.params).ok()?;
            Some(server.did_open(p))
        }
        notif::DidChangeTextDocument::METHOD => {
            let p = serde_json::from_value(n.params).ok()?;
            server.did_change(p)
        }
        notif::DidCloseTextDocument::METHOD => {
            let p = serde_json::from_value(n.params).ok()?;
            Some(server.did_close(p))
        }
        _ => None,
    }));
    match published {
        Ok(p) => p.map(|p| Notification::new(notif::PublishDiagnostics::METHOD.to_string(), p)),
        Err(_) => {
            let msg = ShowMessageParams {
                typ: lsp_types::MessageType::ERROR,
                message: "pipe lsp hit a bug while checking this file; please report it".into(),
            };
            Some(Notification::new(
                notif::ShowMessage::METHOD.to_string(),
                msg,
            ))
        }
    }
}

use lsp_types::ShowMessageParams;
