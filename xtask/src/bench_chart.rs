//! `docs/benchmarks.svg` from a [`Run`]: the chart the report
//! (`docs/benchmarks.md`, [`bench_report`](crate::bench_report)) shows.

use std::path::Path;

use plotters::prelude::*;

use crate::bench::{Run, VMAS};
use crate::bench_report::{WRITE, median};

/// Two panels: model vs kernel for each write-path loop at 1,024 VMAs
/// (log scale), and lookup cost against the VMA count.
pub fn chart(run: &Run, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(600);
    let names: Vec<&str> = WRITE.iter().map(|w| w.0).chain(["maps_render_per_vma"]).collect();
    let model_color = RGBColor(0x1f, 0x77, 0xb4);
    let kernel_color = RGBColor(0xd6, 0x27, 0x28);
    // One row per (bench, model or kernel), model first.
    let mut rows: Vec<(String, f64, RGBColor)> = Vec::new();
    for n in &names {
        if let (Some(m), Some(k)) = (median(run, n, "upstream", 1024), median(run, n, "kernel", 1024)) {
            rows.push((format!("{n} (model)"), m, model_color));
            rows.push((format!("{n} (kernel)"), k, kernel_color));
        }
    }
    let top = rows.iter().map(|r| r.1).fold(10.0, f64::max) * 2.0;
    let count = rows.len() as i32;
    let mut c = ChartBuilder::on(&left)
        .caption("ns per operation, 1,024 VMAs, upstream (log)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(190)
        .build_cartesian_2d((1f64..top).log_scale(), (0..count.max(1)).into_segmented())
        .map_err(|e| e.to_string())?;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    c.configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len().max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_style(("sans-serif", 11))
        .draw()
        .map_err(|e| e.to_string())?;
    c.draw_series(rows.iter().enumerate().map(|(i, (_, v, color))| {
        let i = i as i32;
        let mut bar = Rectangle::new(
            [(1.0, SegmentValue::Exact(i)), (*v, SegmentValue::Exact(i + 1))],
            color.filled(),
        );
        bar.set_margin(2, 2, 0, 0);
        bar
    }))
    .map_err(|e| e.to_string())?;

    let lines = [
        ("spec_lookup", "upstream", model_color),
        ("locked_lookup", "upstream", RGBColor(0x2c, 0xa0, 0x2c)),
        ("mmap_munmap_4k", "upstream", RGBColor(0x94, 0x67, 0xbd)),
        ("mprotect_toggle", "upstream", RGBColor(0x8c, 0x56, 0x4b)),
        ("locked_lookup", "kernel", kernel_color),
    ];
    let top = lines
        .iter()
        .flat_map(|(n, p, _)| VMAS.map(|v| median(run, n, p, v).unwrap_or(1.0)))
        .fold(10.0, f64::max)
        * 2.0;
    let mut c = ChartBuilder::on(&right)
        .caption("ns per operation vs VMAs (log-log)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((32f64..131072f64).log_scale(), (1f64..top).log_scale())
        .map_err(|e| e.to_string())?;
    c.configure_mesh().x_desc("VMAs").draw().map_err(|e| e.to_string())?;
    for (name, pol, color) in lines {
        let pts: Vec<(f64, f64)> = VMAS
            .iter()
            .filter_map(|&v| Some((v as f64, median(run, name, pol, v)?)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let label = if pol == "kernel" {
            format!("{name} (kernel: mincore)")
        } else {
            name.to_string()
        };
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2)));
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
