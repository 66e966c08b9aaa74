//! Parquet text sources: one document per row of a string column, read one row group at a
//! time (memory bounded by a row group's column), with the `parquet` crate's column reader (no
//! arrow). A null row is no document (as a blank JSONL line is none); an empty string is a
//! document of its end-of-document token alone, as `{"text": ""}` is.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::{ColumnReader, get_typed_column_reader};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::error::{DataError, Result};

/// Rows decoded per call of the column reader.
const CHUNK: usize = 4096;

pub struct ParquetText {
    path: PathBuf,
    reader: SerializedFileReader<File>,
    column: usize,
    /// Definition level of a present value (0 for a required column).
    max_def: i16,
}

fn parquet_err(path: &Path, e: parquet::errors::ParquetError) -> DataError {
    DataError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl ParquetText {
    /// Opens `path` and finds `column`, a top-level string column; anything else (no such
    /// column, a number, binary, a list or a struct field) is an error naming what is there.
    pub fn open(path: &Path, column: &str) -> Result<ParquetText> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| parquet_err(path, e))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let wrong = |problem: String, hint: String| DataError::ParquetColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            problem,
            hint,
        };
        let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        let Some(i) = schema
            .columns()
            .iter()
            .position(|c| c.path().parts() == [column.to_string()])
        else {
            return Err(wrong(
                "does not exist".into(),
                format!(
                    "the file's columns are {}; name the text column with `column = \"...\"`",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let c = schema.column(i);
        let is_string = c.physical_type() == PhysicalType::BYTE_ARRAY
            && (matches!(c.logical_type_ref(), Some(LogicalType::String))
                || c.converted_type() == ConvertedType::UTF8);
        if !is_string || c.max_rep_level() > 0 {
            let found = match (c.max_rep_level() > 0, c.logical_type_ref()) {
                (true, _) => "a repeated (list) column".to_string(),
                (false, Some(l)) => format!("{:?} ({l:?})", c.physical_type()),
                (false, None) => format!("{:?}", c.physical_type()),
            };
            return Err(wrong(
                format!("is {found}, not a string column"),
                "the text of each document must be a UTF-8 string column (Parquet BYTE_ARRAY \
                 annotated String)"
                    .into(),
            ));
        }
        Ok(ParquetText {
            path: path.to_path_buf(),
            max_def: c.max_def_level(),
            reader,
            column: i,
        })
    }

    pub fn row_groups(&self) -> usize {
        self.reader.num_row_groups()
    }

    pub fn rows_in(&self, group: usize) -> u64 {
        self.reader.metadata().row_group(group).num_rows() as u64
    }

    /// The column's values in row group `group`, `None` for a null row.
    pub fn read_group(&self, group: usize) -> Result<Vec<Option<String>>> {
        let err = |e| parquet_err(&self.path, e);
        let rg = self.reader.get_row_group(group).map_err(err)?;
        let ColumnReader::ByteArrayColumnReader(r) =
            rg.get_column_reader(self.column).map_err(err)?
        else {
            unreachable!("open checked that the column is BYTE_ARRAY");
        };
        let mut r =
            get_typed_column_reader::<ByteArrayType>(ColumnReader::ByteArrayColumnReader(r));
        let rows = self.rows_in(group) as usize;
        let mut out: Vec<Option<String>> = Vec::with_capacity(rows);
        let mut defs: Vec<i16> = Vec::with_capacity(CHUNK);
        let mut values: Vec<ByteArray> = Vec::with_capacity(CHUNK);
        while out.len() < rows {
            defs.clear();
            values.clear();
            let (records, _, _) = r
                .read_records(CHUNK, Some(&mut defs), None, &mut values)
                .map_err(err)?;
            if records == 0 {
                return Err(DataError::Parquet {
                    path: self.path.clone(),
                    message: format!(
                        "row group {group} ends after {} of its {rows} rows",
                        out.len()
                    ),
                });
            }
            let mut v = values.drain(..);
            for k in 0..records {
                let present = self.max_def == 0 || defs.get(k) == Some(&self.max_def);
                if !present {
                    out.push(None);
                    continue;
                }
                let bytes = v.next().expect("one value per present row");
                let text =
                    String::from_utf8(bytes.data().to_vec()).map_err(|_| DataError::Parquet {
                        path: self.path.clone(),
                        message: format!(
                            "row group {group}, row {}: the string is not valid UTF-8",
                            out.len()
                        ),
                    })?;
                out.push(Some(text));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelang_test_support::parquet as fixtures;

    #[test]
    fn row_groups_nulls_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.parquet");
        fixtures::write(&p, &[vec![Some("one"), None, Some("")], vec![Some("ünï")]]);
        let t = ParquetText::open(&p, "text").unwrap();
        assert_eq!((t.row_groups(), t.rows_in(0), t.rows_in(1)), (2, 3, 1));
        assert_eq!(
            t.read_group(0).unwrap(),
            [Some("one".to_string()), None, Some(String::new())]
        );
        assert_eq!(t.read_group(1).unwrap(), [Some("ünï".to_string())]);

        let err = ParquetText::open(&p, "body").err().unwrap();
        assert!(
            err.to_string().contains("column `body` does not exist"),
            "{err}"
        );
        assert!(err.to_string().contains("`text`, `n`"), "{err}");
        let err = ParquetText::open(&p, "n").err().unwrap();
        assert!(
            err.to_string().contains("INT64, not a string column"),
            "{err}"
        );

        std::fs::write(dir.path().join("bad.parquet"), b"PAR1 not really").unwrap();
        let err = ParquetText::open(&dir.path().join("bad.parquet"), "text")
            .err()
            .unwrap();
        assert!(matches!(err, DataError::Parquet { .. }), "{err}");
    }
}
