//! Parquet fixtures written with the `parquet` crate's own writer.

use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// One row group per entry of `groups`, of a table with an optional string column `text` and
/// an int64 column `n` (1, 2, ... over the file); `None` is a null row.
pub fn write<S: AsRef<str>>(path: &Path, groups: &[Vec<Option<S>>]) {
    let schema = Arc::new(
        parse_message_type("message doc { optional binary text (STRING); required int64 n; }")
            .unwrap(),
    );
    let props = Arc::new(WriterProperties::builder().build());
    let mut w =
        SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut n = 0i64;
    for rows in groups {
        let mut rg = w.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let defs: Vec<i16> = rows.iter().map(|r| i16::from(r.is_some())).collect();
        let values: Vec<ByteArray> = rows.iter().flatten().map(|s| s.as_ref().into()).collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, Some(&defs), None)
            .unwrap();
        col.close().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        let ns: Vec<i64> = rows
            .iter()
            .map(|_| {
                n += 1;
                n
            })
            .collect();
        col.typed::<Int64Type>()
            .write_batch(&ns, None, None)
            .unwrap();
        col.close().unwrap();
        rg.close().unwrap();
    }
    w.close().unwrap();
}
