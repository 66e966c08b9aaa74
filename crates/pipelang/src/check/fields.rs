//! The fields of a block, against its table in `schema`: duplicates, unknown fields (with
//! suggestions) and missing ones.

use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::schema::{self, Block, pipeline};
use crate::syntax::{BlockEntry, Body, Entry, Field, ScaleEntry, Span, SyntaxError};

use super::names::did_you_mean;

pub struct Fields<'a> {
    fields: Vec<&'a Field>,
    /// Fields whose entry had a syntax error, or that were written misspelled (`budgte`):
    /// present, just broken; the error at the entry is the cause, not a missing field.
    broken: Vec<String>,
    pub blocks: Vec<&'a BlockEntry>,
    pub scales: Vec<&'a ScaleEntry>,
    /// The block's braces: where a missing field's fix adds it.
    body: Span,
}

impl<'a> Fields<'a> {
    pub fn collect(
        errors: &[SyntaxError],
        body: &'a Body,
        shape: &Block,
        diags: &mut Diagnostics,
    ) -> Fields<'a> {
        let broken = errors
            .iter()
            .filter(|e| body.span.contains(e.skipped.start) && body.span.contains(e.skipped.end))
            .filter_map(|e| e.key.clone())
            .collect();
        let mut out = Fields {
            fields: vec![],
            broken,
            blocks: vec![],
            scales: vec![],
            body: body.span,
        };
        for entry in &body.entries {
            match entry {
                Entry::Field(f) => {
                    // Its entry went on past what parsed (`budget = 15.6 T`): the value read
                    // is not the one written.
                    if out.broken.iter().any(|b| *b == f.key.name) {
                        continue;
                    }
                    if shape.field(&f.key.name).is_none() {
                        unknown(diags, &f.key.name, f.key.span, shape);
                        if let Some(meant) = did_you_mean(&f.key.name, shape.names()) {
                            out.broken.push(meant.to_string());
                        }
                        continue;
                    }
                    if let Some(prev) = out.named(&f.key.name) {
                        diags.push(
                            Diagnostic::new(
                                Code::DUPLICATE,
                                format!("`{}` is set twice", f.key.name),
                            )
                            .label(f.key.span, "set again here")
                            .label(prev.key.span, "first set here")
                            .help("remove one of the two"),
                        );
                        continue;
                    }
                    if let Some(b) = &f.body {
                        diags.push(
                            Diagnostic::new(Code::UNKNOWN_FIELD, format!("`{}` cannot have a block", f.key.name))
                                .label(b.span, "unexpected block")
                                .help("only mixture groups inside `mix { ... }` take a block after their share"),
                        );
                    }
                    out.fields.push(f);
                }
                Entry::Block(b) => {
                    if !shape.blocks.contains(&b.keyword.name.as_str()) {
                        let help = if shape.field(&b.keyword.name).is_some() {
                            Some(format!(
                                "`{}` is a field: write `{} = ...`",
                                b.keyword.name, b.keyword.name
                            ))
                        } else {
                            None
                        };
                        let mut d = Diagnostic::new(
                            Code::UNKNOWN_FIELD,
                            format!("{} has no `{}` block", capital(shape.what), b.keyword.name),
                        )
                        .label(b.keyword.span, "unknown block");
                        d = d.help(help.unwrap_or_else(|| allowed_blocks(&b.keyword.name, shape)));
                        diags.push(d);
                        continue;
                    }
                    out.blocks.push(b);
                }
                Entry::Scale(s) => {
                    if !shape.scales {
                        diags.push(
                            Diagnostic::new(
                                Code::UNKNOWN_FIELD,
                                "`scale` is only valid in a profile".to_string(),
                            )
                            .label(s.span, format!("not valid in {}", shape.what))
                            .help("move it into a `profile NAME { ... }` block"),
                        );
                        continue;
                    }
                    out.scales.push(s);
                }
            }
        }
        out
    }

    pub fn get(&self, field: &schema::Field) -> Option<&'a Field> {
        self.named(field.name)
    }

    fn named(&self, name: &str) -> Option<&'a Field> {
        self.fields.iter().find(|f| f.key.name == name).copied()
    }

    /// Where the data is: `data_root = "PATH"` or `sample_data = "PATH"` (the same place,
    /// generated when missing). Both at once would leave one silently ignored.
    pub fn data_root(&self, diags: &mut Diagnostics) -> Option<(&'a Field, bool)> {
        match (
            self.get(&pipeline::DATA_ROOT),
            self.get(&pipeline::SAMPLE_DATA),
        ) {
            (Some(root), Some(sample)) => {
                diags.push(
                    Diagnostic::new(
                        Code::DUPLICATE,
                        "`data_root` and `sample_data` both say where the data is",
                    )
                    .label(sample.key.span, "sample data here")
                    .label(root.key.span, "and a data root here")
                    .help(
                        "keep one: `sample_data` is a `data_root` whose sample data `pipe run` \
                         generates when it is missing",
                    ),
                );
                Some((sample, true))
            }
            (Some(root), None) => Some((root, false)),
            (None, Some(sample)) => Some((sample, true)),
            (None, None) => None,
        }
    }

    /// The field, or a missing-field error at `at` with the schema's example in the help.
    pub fn require(
        &self,
        field: &schema::Field,
        at: Span,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<&'a Field> {
        let f = self.get(field);
        let name = field.name;
        if f.is_none() && !self.broken.iter().any(|b| b == name) {
            diags.push(
                Diagnostic::new(Code::MISSING_FIELD, format!("{what} has no `{name}`"))
                    .label(at, format!("`{name}` is required here"))
                    .help(format!("add `{}`", field.example()))
                    .fix(Fix::add_field(self.body, field.example())),
            );
        }
        f
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

fn unknown(diags: &mut Diagnostics, name: &str, span: Span, shape: &Block) {
    let help = match did_you_mean(name, shape.names()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "the fields of {} are: {}",
            shape.what,
            shape.names().collect::<Vec<_>>().join(", ")
        ),
    };
    diags.push(
        Diagnostic::new(
            Code::UNKNOWN_FIELD,
            format!("{} has no field `{name}`", capital(shape.what)),
        )
        .label(span, "unknown field")
        .help(help)
        .fix(did_you_mean(name, shape.names()).map(|to| Fix::rename(span, to))),
    );
}

fn allowed_blocks(name: &str, shape: &Block) -> String {
    if shape.blocks.is_empty() {
        return format!("{} takes no blocks", shape.what);
    }
    match did_you_mean(name, shape.blocks.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "the blocks of {} are: {}",
            shape.what,
            shape.blocks.join(", ")
        ),
    }
}
