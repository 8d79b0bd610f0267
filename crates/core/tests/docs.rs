//! Every TOML block in docs/model-language.md checks without errors or warnings: the guide's
//! examples cannot drift from the language.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "tests and benches fail loudly on broken fixtures")]

use leadscore_core::model::check_model;

const HEADER: &str = "[model]\nname = \"doc\"\n[dimensions.fit]\n[dimensions.engagement]\n";

#[test]
fn every_toml_block_in_the_model_guide_checks() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/model-language.md")).expect("guide");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in guide.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 5, "found {} toml blocks", blocks.len());
    for block in blocks {
        let source = if block.contains("[model]") { block.clone() } else { format!("{HEADER}{block}") };
        let report = check_model(&source);
        let rendered: Vec<String> = report.diagnostics.iter().map(|d| d.render("guide", &source)).collect();
        assert!(report.diagnostics.is_empty(), "{}\n{}", source, rendered.join("\n"));
    }
}
