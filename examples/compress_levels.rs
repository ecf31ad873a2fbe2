//! The CPU/size trade-off behind portico's compression levels (`src/http/compress.rs`): compresses
//! Luigi's own script and stylesheet at several brotli qualities and gzip levels, as the on-the-fly
//! encoder does (brotli window 512 KiB) and as `build.rs` does (brotli 11), and prints bytes and
//! milliseconds (best of 5).
//!
//! Usage: `cargo run --release --example compress_levels` (after `npm ci`). Debug builds mislead: the
//! encoders are generic and get compiled unoptimised into the caller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, Instant};

fn best_of<F: FnMut() -> usize>(mut run: F) -> (usize, Duration) {
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        size = run();
        best = best.min(started.elapsed());
    }
    (size, best)
}

fn main() {
    for file in ["luigi.js", "luigi.css"] {
        let path = format!("node_modules/@luigi-project/core/{file}");
        let data = std::fs::read(&path).expect("run `npm ci` first");
        println!("{file}: {} bytes", data.len());
        for quality in [1, 3, 4, 5, 6, 9, 11] {
            let window = if quality == 11 { 22 } else { 19 };
            let (size, time) = best_of(|| {
                let mut writer = brotli::CompressorWriter::new(Vec::new(), 4096, quality, window);
                writer.write_all(&data).unwrap();
                writer.into_inner().len()
            });
            println!(
                "  br {quality:>2}: {size:>8} bytes {:>9.2} ms",
                time.as_secs_f64() * 1e3
            );
        }
        for level in [1, 5, 6, 9] {
            let (size, time) = best_of(|| {
                let mut writer =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                writer.write_all(&data).unwrap();
                writer.finish().unwrap().len()
            });
            println!(
                "  gzip {level}: {size:>8} bytes {:>9.2} ms",
                time.as_secs_f64() * 1e3
            );
        }
    }
}
