//! `history.png`: the loss and metric curves of a run, training and validation, drawn with
//! plotters into an RGB buffer and encoded as PNG. Text uses DejaVu Sans, embedded in the
//! binary (the `dejavu` crate) and rasterised by ab_glyph, so no system font, fontconfig or
//! freetype is needed.
use std::io::Cursor;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};
use crate::model::History;

/// Width and height of `history.png` with up to [`PANELS_PER_ROW`] panels, in pixels; each
/// further row of panels adds the height again.
pub const SIZE: (u32, u32) = (1200, 450);
/// Panels side by side in one row of `history.png`.
pub const PANELS_PER_ROW: usize = 3;

/// Registers the embedded font as plotters' sans-serif family (once per process).
fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a valid TTF compiled into the binary; a failure would only lose labels.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::invalid("history plot", e.to_string())
}

/// The panels of `history.png`: the loss, then every metric in `history` (by name), each
/// where its training or validation curve was recorded.
pub fn panels(history: &History) -> Vec<String> {
    let mut keys: Vec<String> = history
        .history
        .keys()
        .map(|k| k.strip_prefix("val_").unwrap_or(k).to_string())
        .filter(|k| k != "loss" && k != "lr")
        .collect();
    keys.sort();
    keys.dedup();
    let has_loss = history.history.contains_key("loss") || history.history.contains_key("val_loss");
    has_loss.then(|| "loss".to_string()).into_iter().chain(keys).collect()
}

/// The curves of `history` as a PNG: one panel for the loss and one per metric (up to
/// [`PANELS_PER_ROW`] in a row), each with the training curve (blue) and the validation curve
/// (orange).
pub fn history_png(history: &History) -> Result<Vec<u8>> {
    register_embedded_font();
    let panels = panels(history);
    let rows = panels.len().div_ceil(PANELS_PER_ROW).max(1);
    let (w, h) = (SIZE.0, SIZE.1 * rows as u32);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((rows, panels.len().clamp(1, PANELS_PER_ROW)));
        for (area, key) in areas.iter().zip(&panels) {
            draw_panel(area, history, key)?;
        }
        root.present().map_err(plot_error)?;
    }
    let image = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| plot_error("buffer size"))?;
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).map_err(plot_error)?;
    Ok(png)
}

/// A panel's title: "Loss", "Accuracy", "AUC", "Macro f1", "Top k categorical accuracy", …
fn title(key: &str) -> String {
    match key {
        "auc" | "mae" | "mse" => key.to_uppercase(),
        _ => {
            let words = key.replace('_', " ");
            let mut chars = words.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        }
    }
}

/// One panel: `key` and `val_key` against the epoch (from 1).
fn draw_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    history: &History,
    key: &str,
) -> Result<()> {
    let series: Vec<(String, &Vec<f32>, RGBColor)> =
        [(key.to_string(), RGBColor(31, 119, 180)), (format!("val_{key}"), RGBColor(255, 127, 14))]
            .into_iter()
            .filter_map(|(name, color)| history.history.get(&name).map(|v| (name, v, color)))
            .collect();
    let finite = || series.iter().flat_map(|(_, v, _)| v.iter().copied()).filter(|v| v.is_finite());
    let epochs = series.iter().map(|(_, v, _)| v.len()).max().unwrap_or(0).max(1);
    let (mut lo, mut hi) =
        (finite().fold(f32::INFINITY, f32::min), finite().fold(f32::NEG_INFINITY, f32::max));
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    // Ratios (accuracy, AUC, precision, …) are drawn up to 1.
    if !matches!(key, "loss" | "mae" | "mse") && lo >= 0.0 && hi <= 1.0 {
        (lo, hi) = (lo.min(hi - 0.05).max(0.0), 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title(key), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1u32..(epochs as u32).max(2), (lo - pad)..(hi + pad))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(epochs.clamp(2, 12))
        .x_desc("epoch")
        .y_desc(key)
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_error)?;
    for (name, values, color) in &series {
        let points =
            values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| ((i + 1) as u32, v));
        let style = ShapeStyle::from(color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(plot_error)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}
