//! Values on one line: `f(a = 1, b)`, `[x, y]`, `8K -> 32K`, `1/256`, `a then b`.

use crate::syntax::{Args, Expr, ExprKind};

pub fn expr(src: &str, e: &Expr) -> String {
    match &e.kind {
        // Numbers keep their written form (`163_840`, `4e-4`, `2.0T`); only the space before
        // `steps` is normalised.
        ExprKind::Quantity(_) => src[e.span.start..e.span.end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        ExprKind::Str(_) => src[e.span.start..e.span.end].to_string(),
        ExprKind::Ratio(a, b) => format!("{}/{}", expr(src, a), expr(src, b)),
        ExprKind::Ident(name) => name.clone(),
        ExprKind::List(items) => {
            let items: Vec<String> = items.iter().map(|i| expr(src, i)).collect();
            format!("[{}]", items.join(", "))
        }
        ExprKind::Call { name, args: a } => format!("{}{}", name.name, args(src, a)),
        ExprKind::Transition(a, b) => format!("{} -> {}", expr(src, a), expr(src, b)),
        ExprKind::Chain(parts) => {
            let parts: Vec<String> = parts.iter().map(|p| expr(src, p)).collect();
            parts.join(" then ")
        }
    }
}

pub fn args(src: &str, a: &Args) -> String {
    let items: Vec<String> = a
        .args
        .iter()
        .map(|arg| match &arg.name {
            Some(n) => format!("{} = {}", n.name, expr(src, &arg.value)),
            None => expr(src, &arg.value),
        })
        .collect();
    format!("({})", items.join(", "))
}
