//! The report's chart, pure (figures in, PNG out): requests submitted per day as bars, and the
//! share of each day's requests carried out of a measured kind (see [`super::measured`])
//! within their service level as a line, drawn with a bundled font so it looks the same on
//! every server.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::Day;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 360;

/// DejaVu Sans (its licence is beside it): the accents of Spanish labels, on any server.
static FONT: &[u8] = include_bytes!("DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    #[error("cannot encode the chart: {0}")]
    Encode(#[from] png::EncodingError),
}

/// The chart of `days` as a PNG image.
pub fn png(days: &[Day]) -> Result<Vec<u8>, ChartError> {
    REGISTER.call_once(|| {
        // The font is ours and valid; a failure would only leave labels out.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    draw(days, &mut rgb).map_err(|e| ChartError::Draw(e.to_string()))?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(out)
}

fn draw(days: &[Day], rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = days.len().max(1);
    let most = days.iter().map(|d| d.submitted).max().unwrap_or(0).max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption("Solicitudes por día y % atendidas dentro del ANS", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .right_y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..(most as f64 * 1.2).ceil())?
        .set_secondary_coord(-0.5f64..n as f64 - 0.5, 0f64..100f64);
    // Day `i` is centred on `i`: its label under its bar.
    let label = |x: &f64| {
        let i = x.round();
        let on_a_day = (x - i).abs() < 0.01 && i >= 0.0;
        days.get(i as usize)
            .filter(|_| on_a_day)
            .map(|d| d.date.strftime("%d/%m").to_string())
            .unwrap_or_default()
    };
    let whole = |y: &f64| format!("{y:.0}");
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(if n <= 14 { n + 1 } else { 14 })
        .x_label_formatter(&label)
        .y_label_formatter(&whole)
        .y_desc("solicitudes")
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 12))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_label_formatter(&whole)
        .y_desc("% dentro del ANS")
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 12))
        .draw()?;
    let bars = RGBColor(70, 120, 180);
    chart.draw_series(days.iter().enumerate().map(|(i, d)| {
        Rectangle::new([(i as f64 - 0.35, 0.0), (i as f64 + 0.35, d.submitted as f64)], bars.filled())
    }))?;
    let line = RGBColor(200, 80, 40);
    let points: Vec<(f64, f64)> =
        days.iter().enumerate().filter_map(|(i, d)| Some((i as f64, d.met_percent()?))).collect();
    chart.draw_secondary_series(LineSeries::new(points.clone(), line.stroke_width(2)))?;
    chart.draw_secondary_series(points.into_iter().map(|p| Circle::new(p, 3, line.filled())))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_is_drawn_as_a_png_of_the_chart_s_size() {
        let days: Vec<Day> = (0..7)
            .map(|i| Day {
                date: jiff::civil::date(2026, 11, 23 + i),
                submitted: (i as usize * 3) % 7,
                measured: (i as usize * 3) % 7,
                met: (i as usize * 2) % 5,
            })
            .collect();
        let png = png(&days).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // The IHDR chunk: width and height, big-endian.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), WIDTH);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), HEIGHT);
        // Not a blank canvas: bars and text were drawn (a white PNG compresses to almost nothing).
        assert!(png.len() > 5_000, "{} bytes", png.len());
        if let Some(path) = std::env::var_os("CUENTAS_CHART_OUT") {
            std::fs::write(path, &png).unwrap();
        }
    }
}
