//! A block's field table as `docs/language.md` writes it (`tests/schema.rs` compares them).

use super::{Block, Missing, Scale};
use crate::check::units;

impl Block {
    pub fn docs_table(&self) -> String {
        let scaled = self.fields.iter().any(|f| f.scale != Scale::No);
        let mut head = vec!["field", "type", "default"];
        if scaled {
            head.push("scaled by");
        }
        head.push("");
        let mut out = row(head.iter().map(|h| h.to_string()).collect());
        out += &format!("|{}\n", "---|".repeat(head.len()));
        for f in self.fields {
            let mut cells = vec![format!("`{}`", f.name), f.ty.name(), f.missing.docs()];
            if scaled {
                cells.push(match f.scale {
                    Scale::No => String::new(),
                    s => format!("`scale {} by F`", s.target()),
                });
            }
            cells.push(f.doc.to_string());
            out += &row(cells);
        }
        out
    }
}

fn row(cells: Vec<String>) -> String {
    let cells: Vec<String> = cells
        .into_iter()
        .map(|c| {
            if c.is_empty() {
                " ".into()
            } else {
                format!(" {c} ")
            }
        })
        .collect();
    format!("|{}|\n", cells.join("|"))
}

impl Missing {
    /// The default column of the docs.
    pub fn docs(self) -> String {
        match self {
            Missing::Required(_) => "required".into(),
            Missing::Count(n) => format!("`{}`", units::underscored(n)),
            Missing::Number(x) if x.fract() == 0.0 && x >= 0.0 => {
                format!("`{}`", units::underscored(x as u64))
            }
            Missing::Number(x) => format!("`{x}`"),
            Missing::Word(w) => format!("`{w}`"),
            Missing::Means(s) => s.into(),
        }
    }
}
