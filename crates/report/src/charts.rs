//! Self-contained HTML reports (no scripts, no external assets): a page skeleton with a small
//! stylesheet, tables, and SVG charts drawn here. Used by `backtest --html`,
//! `train --report` and the dashboard.

use std::fmt::Write;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `<title>`, a heading and the given body HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;max-width:1100px;margin:2rem auto;padding:0 1rem}}
h1{{font-size:1.6rem;margin-bottom:.2rem}} h2{{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}}
table{{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}}
th,td{{padding:.25rem .7rem;border-bottom:1px solid #e4e7eb;text-align:right}} th:first-child,td:first-child{{text-align:left}}
th{{background:#f5f7fa;font-weight:600}} .muted{{color:#616e7c}} .grid{{display:flex;flex-wrap:wrap;gap:1.5rem}}
figure{{margin:0}} figcaption{{font-size:.85rem;color:#616e7c}} svg text{{font:11px system-ui,sans-serif;fill:#3e4c59}}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"#,
        title = escape(title)
    )
}

/// A table from a header and rows of already-formatted cells (escaped here).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 16.0;
const RIGHT: f64 = 12.0;
const COLORS: [&str; 4] = ["#2f80ed", "#eb5757", "#27ae60", "#f2994a"];

fn frame(caption: &str, inner: &str, x_label: &str, y_label: &str) -> String {
    format!(
        r##"<figure><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{c}">
<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#9aa5b1"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#9aa5b1"/>
{inner}<text x="{cx}" y="{ly}" text-anchor="middle">{x}</text><text x="12" y="{cy}" text-anchor="middle" transform="rotate(-90 12 {cy})">{y}</text>
</svg><figcaption>{c}</figcaption></figure>"##,
        c = escape(caption),
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT,
        cx = (LEFT + WIDTH - RIGHT) / 2.0,
        ly = HEIGHT - 6.0,
        cy = (TOP + HEIGHT - BOTTOM) / 2.0,
        x = escape(x_label),
        y = escape(y_label),
    )
}

fn y_ticks(max: f64, format: &dyn Fn(f64) -> String) -> String {
    let mut out = String::new();
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * f64::from(i) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#e4e7eb"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"##,
            r = WIDTH - RIGHT,
            tx = LEFT - 4.0,
            ty = y + 4.0,
            label = escape(&format(v))
        );
    }
    out
}

/// Vertical bars, one per `(label, value)`; values are shown on a 0..max scale.
pub fn bar_chart(caption: &str, bars: &[(String, f64)], x_label: &str, y_label: &str, percent: bool) -> String {
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(if percent { 0.01 } else { 1.0 });
    let fmt = |v: f64| if percent { format!("{:.0}%", v * 100.0) } else { format!("{v:.0}") };
    let mut inner = y_ticks(max, &fmt);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = plot_w / bars.len().max(1) as f64;
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = plot_h * value.max(0.0) / max;
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let _ = write!(
            inner,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{t}: {v}</title></rect><text x="{lx:.1}" y="{ly:.1}" text-anchor="middle">{l}</text>"#,
            y = HEIGHT - BOTTOM - h,
            w = slot * 0.7,
            c = COLORS[0],
            t = escape(label),
            v = escape(&fmt(*value)),
            lx = x + slot * 0.35,
            ly = HEIGHT - BOTTOM + 14.0,
            l = escape(label)
        );
    }
    frame(caption, &inner, x_label, y_label)
}

/// Horizontal bars with a label on the left of each, in the order given, and a dashed reference
/// line at `reference` (e.g. a lift of 1: no better than without).
pub fn hbar_chart(caption: &str, bars: &[(String, f64)], x_label: &str, reference: f64) -> String {
    const ROW: f64 = 18.0;
    const LABEL: f64 = 260.0;
    let width = 720.0;
    let height = TOP + ROW * bars.len().max(1) as f64 + BOTTOM;
    let max = bars.iter().map(|b| b.1).fold(reference, f64::max) * 1.05;
    let plot_w = width - LABEL - RIGHT - 40.0;
    let x_of = |v: f64| LABEL + plot_w * v.max(0.0) / max;
    let mut inner = String::new();
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let short: String = label.chars().take(42).collect();
        let color = if *value >= reference { COLORS[2] } else { COLORS[1] };
        let _ = write!(
            inner,
            r#"<text x="{tx}" y="{ty:.1}" text-anchor="end">{l}</text><rect x="{LABEL}" y="{ry:.1}" width="{w:.1}" height="{h:.1}" fill="{color}"><title>{full}: {value:.2}</title></rect><text x="{vx:.1}" y="{ty:.1}">{value:.2}</text>"#,
            tx = LABEL - 6.0,
            ty = y + ROW * 0.7,
            l = escape(&short),
            ry = y + 2.0,
            w = x_of(*value) - LABEL,
            h = ROW - 4.0,
            full = escape(label),
            vx = x_of(*value) + 4.0,
        );
    }
    let rx = x_of(reference);
    let _ = write!(
        inner,
        r##"<line x1="{rx:.1}" y1="{TOP}" x2="{rx:.1}" y2="{b:.1}" stroke="#616e7c" stroke-dasharray="4 3"/><text x="{rx:.1}" y="{ly:.1}" text-anchor="middle">{reference}</text><text x="{cx:.1}" y="{xl:.1}" text-anchor="middle">{x}</text>"##,
        b = height - BOTTOM,
        ly = height - BOTTOM + 14.0,
        cx = LABEL + plot_w / 2.0,
        xl = height - 6.0,
        x = escape(x_label),
    );
    format!(
        r#"<figure><svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{c}">{inner}</svg><figcaption>{c}</figcaption></figure>"#,
        c = escape(caption)
    )
}

/// Lines through `(x, y)` points in [0, 1] x [0, 1] (e.g. cumulative gains), with a legend.
pub fn line_chart(caption: &str, series: &[(String, Vec<(f64, f64)>)], x_label: &str, y_label: &str) -> String {
    let mut inner = y_ticks(1.0, &|v| format!("{:.0}%", v * 100.0));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let to_xy = |(x, y): (f64, f64)| (LEFT + plot_w * x, HEIGHT - BOTTOM - plot_h * y);
    // The x axis' ticks: shares of leads.
    for i in 0..=4 {
        let (x, y) = to_xy((f64::from(i) / 4.0, 0.0));
        let _ = write!(
            inner,
            r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{t:.1}" stroke="#9aa5b1"/><text x="{x:.1}" y="{ly:.1}" text-anchor="{anchor}">{l}%</text>"##,
            t = y + 4.0,
            ly = y + 16.0,
            l = 25 * i,
            // The last label ends at the axis' end, inside the chart.
            anchor = if i == 4 { "end" } else { "middle" },
        );
    }
    let (x0, y0) = to_xy((0.0, 0.0));
    let (x1, y1) = to_xy((1.0, 1.0));
    let _ =
        write!(inner, r##"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#cbd2d9" stroke-dasharray="4 3"/>"##);
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points.iter().map(|&p| to_xy(p)).map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            inner,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/><rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/><text x="{tx}" y="{ty}">{}</text>"#,
            path.join(" "),
            escape(name),
            lx = LEFT + 10.0,
            ly = TOP + 4.0 + 16.0 * i as f64,
            tx = LEFT + 24.0,
            ty = TOP + 13.0 + 16.0 * i as f64,
        );
    }
    frame(caption, &inner, x_label, y_label)
}

/// Overlaid histograms of values per group (e.g. score by outcome), as shares of each group.
pub fn histogram(caption: &str, groups: &[(String, Vec<f64>)], bins: usize, x_label: &str) -> String {
    let all = groups.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return frame(caption, "", x_label, "share of leads");
    }
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let shares: Vec<Vec<f64>> = groups
        .iter()
        .map(|(_, values)| {
            let mut counts = vec![0.0; bins];
            for v in values {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1.0;
            }
            counts.iter().map(|c| c / values.len().max(1) as f64).collect()
        })
        .collect();
    let max = shares.iter().flatten().copied().fold(0.01_f64, f64::max);
    let mut inner = y_ticks(max, &|v| format!("{:.0}%", v * 100.0));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = plot_w / bins as f64;
    for (g, counts) in shares.iter().enumerate() {
        let color = COLORS[g % COLORS.len()];
        for (b, share) in counts.iter().enumerate() {
            let h = plot_h * share / max;
            let _ = write!(
                inner,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{color}" fill-opacity="0.55"/>"#,
                x = LEFT + slot * b as f64,
                y = HEIGHT - BOTTOM - h,
                w = slot - 1.0,
            );
        }
        let _ = write!(
            inner,
            r#"<rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/><text x="{tx}" y="{ty}">{}</text>"#,
            escape(&groups[g].0),
            lx = WIDTH - RIGHT - 120.0,
            ly = TOP + 4.0 + 16.0 * g as f64,
            tx = WIDTH - RIGHT - 106.0,
            ty = TOP + 13.0 + 16.0 * g as f64,
        );
    }
    let _ = write!(
        inner,
        r#"<text x="{LEFT}" y="{y}" text-anchor="start">{lo:.0}</text><text x="{r}" y="{y}" text-anchor="end">{hi:.0}</text>"#,
        y = HEIGHT - BOTTOM + 14.0,
        r = WIDTH - RIGHT,
    );
    frame(caption, &inner, x_label, "share of leads")
}

/// Points by segment as horizontal bars either side of zero (a learned shape function): one row
/// per `(label, points)`, in the given order.
pub fn points_chart(caption: &str, bars: &[(String, f64)]) -> String {
    const ROW: f64 = 22.0;
    const LABEL: f64 = 230.0;
    let height = TOP + ROW * bars.len() as f64 + 8.0;
    let most = bars.iter().map(|b| b.1.abs()).fold(1.0_f64, f64::max);
    let half = (WIDTH - LABEL - RIGHT - 44.0) / 2.0;
    let zero = LABEL + 22.0 + half;
    let mut inner =
        format!(r##"<line x1="{zero:.1}" x2="{zero:.1}" y1="{TOP}" y2="{:.1}" stroke="#9aa5b1"/>"##, height - 8.0);
    for (i, (label, points)) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let width = half * points.abs() / most;
        let x = if *points < 0.0 { zero - width } else { zero };
        let color = if *points < 0.0 { COLORS[1] } else { COLORS[0] };
        let short: String =
            if label.chars().count() > 34 { label.chars().take(33).chain(['…']).collect() } else { label.clone() };
        let value_x = if *points < 0.0 { x - 3.0 } else { x + width + 3.0 };
        let anchor = if *points < 0.0 { "end" } else { "start" };
        let _ = write!(
            inner,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}<title>{}</title></text><rect x="{x:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{color}"/><text x="{value_x:.1}" y="{:.1}" text-anchor="{anchor}">{points:+.1}</text>"##,
            LABEL,
            y + ROW * 0.7,
            escape(&short),
            escape(label),
            y + 3.0,
            ROW - 6.0,
            y + ROW * 0.7,
        );
    }
    format!(
        r#"<figure><svg viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="{}">{inner}</svg><figcaption>{}</figcaption></figure>"#,
        escape(caption),
        escape(caption)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let html = page("A <b> report", &table(&["rule"], &[vec!["<script>".into()]]));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    }

    #[test]
    fn charts_are_svg_with_one_shape_per_value() {
        let svg = bar_chart("conversion", &[("1".into(), 0.5), ("2".into(), 0.25)], "band", "rate", true);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("50%"));
        let lines =
            line_chart("gains", &[("model".into(), vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)])], "leads", "converters");
        assert_eq!(lines.matches("<polyline").count(), 1);
        let lift = hbar_chart("lift", &[("Pricing".into(), 3.0), ("Careers".into(), 0.5)], "lift", 1.0);
        assert_eq!(lift.matches("<rect").count(), 2);
        assert!(lift.contains("stroke-dasharray"), "a reference line at 1");
        let hist = histogram("scores", &[("won".into(), vec![1.0, 2.0]), ("lost".into(), vec![0.0])], 4, "score");
        assert_eq!(hist.matches("fill-opacity").count(), 8);
    }
}
