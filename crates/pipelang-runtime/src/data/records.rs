//! Parsing one JSONL line into a record: `text`, `image_text`, `interleaved` or `video`.
//! Image paths are resolved relative to the JSONL file's folder.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{DataError, Result};

/// The kind of a data source, as the `.pipe` file declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    /// `{"text": ...}` per JSONL line, or plain `.txt` files (one document per file).
    Text,
    /// `{"image": "path", "text": "caption"}`.
    ImageText,
    /// `{"items": [{"text": ...}, {"image": "path"}, ...]}`.
    Interleaved,
    /// `{"frames": ["f0.png", ...], "text": ...}`.
    Video,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Text => "text",
            SourceKind::ImageText => "image_text",
            SourceKind::Interleaved => "interleaved",
            SourceKind::Video => "video",
        }
    }

    /// The kind named by a `.pipe` data declaration (`text`, `image_text`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "text" => SourceKind::Text,
            "image_text" => SourceKind::ImageText,
            "interleaved" => SourceKind::Interleaved,
            "video" => SourceKind::Video,
            _ => return None,
        })
    }
}

/// One element of a multimodal record, in reading order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Image(PathBuf),
}

/// Where a record came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub path: &'a Path,
    pub line: u64,
}

impl Origin<'_> {
    fn wrong(&self, field: &str, problem: &str, expected: &str) -> DataError {
        DataError::WrongField {
            path: self.path.to_path_buf(),
            line: self.line,
            field: field.into(),
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_object(origin: Origin, line: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(DataError::MalformedLine {
            path: origin.path.to_path_buf(),
            line: origin.line,
            message: format!("expected a JSON object, found {}", type_name(&other)),
        }),
        Err(e) => Err(DataError::MalformedLine {
            path: origin.path.to_path_buf(),
            line: origin.line,
            message: e.to_string(),
        }),
    }
}

fn str_field<'m>(
    origin: Origin,
    map: &'m Map<String, Value>,
    field: &str,
    expected: &str,
) -> Result<&'m str> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(origin.wrong(field, &format!("is {}", type_name(other)), expected)),
        None => Err(origin.wrong(field, "is missing", expected)),
    }
}

fn image_path(origin: Origin, rel: &str, field: &str) -> Result<PathBuf> {
    if rel.trim().is_empty() {
        return Err(origin.wrong(field, "is an empty path", "a PNG or JPEG path"));
    }
    let dir = origin.path.parent().unwrap_or(Path::new("."));
    Ok(dir.join(rel))
}

/// The text of a `text` JSONL line.
pub fn parse_text(origin: Origin, line: &str) -> Result<String> {
    let map = parse_object(origin, line)?;
    Ok(str_field(origin, &map, "text", r#"a string: {"text": "..."}"#)?.to_string())
}

/// The pieces of a multimodal JSONL line, in the order the model reads them: for `image_text`
/// the image then its caption, for `video` the frames then the text.
pub fn parse_multimodal(kind: SourceKind, origin: Origin, line: &str) -> Result<Vec<Piece>> {
    let map = parse_object(origin, line)?;
    match kind {
        SourceKind::Text => Ok(vec![Piece::Text(
            str_field(origin, &map, "text", "a string")?.to_string(),
        )]),
        SourceKind::ImageText => {
            let expected = r#"a string: {"image": "path.png", "text": "caption"}"#;
            let image = str_field(origin, &map, "image", expected)?;
            let text = str_field(origin, &map, "text", expected)?;
            Ok(vec![
                Piece::Image(image_path(origin, image, "image")?),
                Piece::Text(text.to_string()),
            ])
        }
        SourceKind::Video => {
            let expected = r#"{"frames": ["f0.png", ...], "text": "..."}"#;
            let frames = match map.get("frames") {
                Some(Value::Array(a)) if !a.is_empty() => a,
                Some(Value::Array(_)) => {
                    return Err(origin.wrong("frames", "is an empty list", expected));
                }
                Some(other) => {
                    return Err(origin.wrong(
                        "frames",
                        &format!("is {}", type_name(other)),
                        expected,
                    ));
                }
                None => return Err(origin.wrong("frames", "is missing", expected)),
            };
            let mut pieces = Vec::with_capacity(frames.len() + 1);
            for (i, f) in frames.iter().enumerate() {
                let field = format!("frames[{i}]");
                match f {
                    Value::String(s) => pieces.push(Piece::Image(image_path(origin, s, &field)?)),
                    other => {
                        return Err(origin.wrong(
                            &field,
                            &format!("is {}", type_name(other)),
                            "a path string",
                        ));
                    }
                }
            }
            pieces.push(Piece::Text(
                str_field(origin, &map, "text", expected)?.to_string(),
            ));
            Ok(pieces)
        }
        SourceKind::Interleaved => {
            let expected = r#"{"items": [{"text": "..."}, {"image": "path.png"}, ...]}"#;
            let items = match map.get("items") {
                Some(Value::Array(a)) if !a.is_empty() => a,
                Some(Value::Array(_)) => {
                    return Err(origin.wrong("items", "is an empty list", expected));
                }
                Some(other) => {
                    return Err(origin.wrong(
                        "items",
                        &format!("is {}", type_name(other)),
                        expected,
                    ));
                }
                None => return Err(origin.wrong("items", "is missing", expected)),
            };
            let mut pieces = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let field = format!("items[{i}]");
                let obj = match item {
                    Value::Object(o) => o,
                    other => {
                        return Err(origin.wrong(
                            &field,
                            &format!("is {}", type_name(other)),
                            expected,
                        ));
                    }
                };
                match (obj.get("text"), obj.get("image")) {
                    (Some(Value::String(t)), None) => pieces.push(Piece::Text(t.clone())),
                    (None, Some(Value::String(p))) => {
                        pieces.push(Piece::Image(image_path(origin, p, &field)?))
                    }
                    _ => {
                        return Err(origin.wrong(
                            &field,
                            "is neither {\"text\": string} nor {\"image\": string}",
                            expected,
                        ));
                    }
                }
            }
            Ok(pieces)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin<'static> {
        Origin {
            path: Path::new("/data/set/a.jsonl"),
            line: 7,
        }
    }

    #[test]
    fn parses_every_kind_with_paths_relative_to_the_file() {
        assert_eq!(parse_text(origin(), r#"{"text": "hi"}"#).unwrap(), "hi");
        let p = parse_multimodal(
            SourceKind::ImageText,
            origin(),
            r#"{"image": "img/1.png", "text": "a cat"}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Image("/data/set/img/1.png".into()),
                Piece::Text("a cat".into())
            ]
        );
        let p = parse_multimodal(
            SourceKind::Interleaved,
            origin(),
            r#"{"items": [{"text": "x"}, {"image": "y.png"}, {"text": "z"}]}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], Piece::Image("/data/set/y.png".into()));
        let p = parse_multimodal(
            SourceKind::Video,
            origin(),
            r#"{"frames": ["f0.png", "f1.png"], "text": "moves"}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[2], Piece::Text("moves".into()));
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let err = parse_text(origin(), r#"{"text": 3}"#).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/data/set/a.jsonl:7") && msg.contains("`text` is a number"),
            "{msg}"
        );

        let err = parse_text(origin(), r#"{"text": "unterminated"#).unwrap_err();
        assert!(
            matches!(err, DataError::MalformedLine { line: 7, .. }),
            "{err}"
        );

        let err = parse_text(origin(), r#"["text"]"#).unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");

        let err =
            parse_multimodal(SourceKind::ImageText, origin(), r#"{"text": "c"}"#).unwrap_err();
        assert!(err.to_string().contains("`image` is missing"), "{err}");

        let err = parse_multimodal(
            SourceKind::Interleaved,
            origin(),
            r#"{"items": [{"video": 1}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("items[0]"), "{err}");

        let err = parse_multimodal(SourceKind::Video, origin(), r#"{"frames": [], "text": ""}"#)
            .unwrap_err();
        assert!(err.to_string().contains("empty list"), "{err}");
    }
}
