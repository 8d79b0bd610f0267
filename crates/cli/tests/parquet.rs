//! Parquet leads and events score exactly like the equivalent CSV and JSON Lines.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

enum Column {
    Text(Vec<Option<&'static str>>),
    Long(Vec<Option<i64>>),
}

fn write_parquet(path: &Path, schema: &str, columns: Vec<Column>) {
    let schema = Arc::new(parse_message_type(schema).expect("schema"));
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build())).expect("writer");
    let mut group = writer.next_row_group().expect("row group");
    for column in columns {
        let mut col = group.next_column().expect("column").expect("more columns");
        match column {
            Column::Text(values) => {
                let levels: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
                let data: Vec<ByteArray> = values.iter().flatten().map(|s| ByteArray::from(*s)).collect();
                col.typed::<ByteArrayType>().write_batch(&data, Some(&levels), None).expect("write");
            }
            Column::Long(values) => {
                let levels: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
                let data: Vec<i64> = values.iter().flatten().copied().collect();
                col.typed::<Int64Type>().write_batch(&data, Some(&levels), None).expect("write");
            }
        }
        col.close().expect("close column");
    }
    group.close().expect("close group");
    writer.close().expect("close file");
}

const MODEL: &str = r#"
[model]
name = "pq"
[dimensions.fit]
[dimensions.engagement]
[[rules]]
name = "Big"
dimension = "fit"
if = 'lead.employees >= 100'
points = 20
[[rules]]
name = "Pricing"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path == "/pricing"'
points = 10
"#;

fn score(dir: &Path, leads: &Path, events: &Path) -> String {
    let model = dir.join("m.toml");
    std::fs::write(&model, MODEL).expect("model");
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["score", "--model"])
        .arg(&model)
        .arg("--leads")
        .arg(leads)
        .arg("--events")
        .arg(events)
        .args(["--as-of", "2024-06-01T00:00:00Z"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn parquet_inputs_score_like_csv_and_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, "id,employees,title\nl1,500,CEO\nl2,10,\n").expect("csv");
    let jsonl = dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"type":"page","userId":"l1","properties":{"path":"/pricing"},"timestamp":"2024-05-01T00:00:00Z","messageId":"a"}"#, "\n",
            r#"{"type":"page","anonymousId":"x","properties":{"path":"/pricing"},"timestamp":"2024-05-02T00:00:00Z","messageId":"b"}"#, "\n",
            r#"{"type":"identify","anonymousId":"x","userId":"l2","traits":{"employees":300},"timestamp":"2024-05-03T00:00:00Z","messageId":"c"}"#, "\n",
        ),
    )
    .expect("jsonl");

    let leads_pq = dir.path().join("leads.parquet");
    write_parquet(
        &leads_pq,
        "message leads { REQUIRED BYTE_ARRAY id (UTF8); OPTIONAL INT64 employees; OPTIONAL BYTE_ARRAY title (UTF8); }",
        vec![
            Column::Text(vec![Some("l1"), Some("l2")]),
            Column::Long(vec![Some(500), Some(10)]),
            Column::Text(vec![Some("CEO"), None]),
        ],
    );
    let events_pq = dir.path().join("events.parquet");
    let day = |d: i64| Some(1_714_521_600_000 + d * 86_400_000);
    write_parquet(
        &events_pq,
        "message events { REQUIRED BYTE_ARRAY type (UTF8); OPTIONAL BYTE_ARRAY userId (UTF8); OPTIONAL BYTE_ARRAY anonymousId (UTF8);
           OPTIONAL INT64 timestamp (TIMESTAMP(MILLIS,true)); OPTIONAL BYTE_ARRAY messageId (UTF8);
           OPTIONAL BYTE_ARRAY properties (UTF8); OPTIONAL BYTE_ARRAY traits (UTF8); }",
        vec![
            Column::Text(vec![Some("page"), Some("page"), Some("identify")]),
            Column::Text(vec![Some("l1"), None, Some("l2")]),
            Column::Text(vec![None, Some("x"), Some("x")]),
            Column::Long(vec![day(0), day(1), day(2)]),
            Column::Text(vec![Some("a"), Some("b"), Some("c")]),
            Column::Text(vec![Some(r#"{"path":"/pricing"}"#), Some(r#"{"path":"/pricing"}"#), None]),
            Column::Text(vec![None, None, Some(r#"{"employees":300}"#)]),
        ],
    );
    let expected = score(dir.path(), &csv, &jsonl);
    assert_eq!(
        expected,
        "lead_id,fit,engagement,total\nl1,20,10,30,lead\nl2,20,10,30,lead\n".replace("total\n", "total,stage\n")
    );
    assert_eq!(score(dir.path(), &leads_pq, &events_pq), expected);
    assert_eq!(score(dir.path(), &csv, &events_pq), expected);
}
