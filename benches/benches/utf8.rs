//! UTF-8 validation alone: `hybi::utf8::Utf8Validator::feed` on 64 KiB of ASCII and of
//! mixed multi-byte text, against `core::str::from_utf8` and `simdutf8` (the validator
//! fastwebsockets uses) as reference points.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hybi::utf8::Utf8Validator;
use hybi_benches::{Content, payload};

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for content in [Content::Ascii, Content::MultiByte] {
        let label = if content == Content::Ascii {
            "ascii-64KiB"
        } else {
            "mixed-64KiB"
        };
        let text = payload(content, 64 << 10);
        group.throughput(Throughput::Bytes(text.len() as u64));

        group.bench_function(BenchmarkId::new("hybi-feed", label), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(&text)).expect("valid");
                v.finish().expect("complete");
            })
        });
        // The same bytes in 1460-byte pieces (one TCP segment each), cut anywhere.
        group.bench_function(BenchmarkId::new("hybi-feed-1460B-pieces", label), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for piece in black_box(&text).chunks(1460) {
                    v.feed(piece).expect("valid");
                }
                v.finish().expect("complete");
            })
        });
        group.bench_function(BenchmarkId::new("core-from_utf8", label), |b| {
            b.iter(|| core::str::from_utf8(black_box(&text)).expect("valid").len())
        });
        group.bench_function(BenchmarkId::new("simdutf8", label), |b| {
            b.iter(|| {
                simdutf8::basic::from_utf8(black_box(&text))
                    .expect("valid")
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, utf8);
criterion_main!(benches);
