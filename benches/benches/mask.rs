//! Masking alone: `hybi::mask::apply_mask` (in place) and `copy_masked` (the send
//! path's copy-and-mask) against a plain memcpy of the same buffer and against
//! fastwebsockets' public `unmask` (a four-bytes-at-a-time loop taken from
//! tungstenite, whose own masking function is private).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hybi_benches::{Content, payload};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [64 << 10, 1 << 20] {
        let label = if size < 1 << 20 { "64KiB" } else { "1MiB" };
        let src = payload(Content::Binary, size);
        let mut dst = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_function(BenchmarkId::new("memcpy", label), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
        group.bench_function(BenchmarkId::new("hybi-apply_mask", label), |b| {
            b.iter(|| {
                hybi::mask::apply_mask(black_box(KEY), 0, black_box(&mut dst));
            })
        });
        group.bench_function(BenchmarkId::new("hybi-apply_mask-offset1", label), |b| {
            b.iter(|| {
                hybi::mask::apply_mask(black_box(KEY), 1, black_box(&mut dst[1..]));
            })
        });
        group.bench_function(BenchmarkId::new("hybi-copy_masked", label), |b| {
            b.iter(|| {
                hybi::mask::copy_masked(black_box(KEY), 0, black_box(&src), &mut dst);
                black_box(&mut dst);
            })
        });
        group.bench_function(BenchmarkId::new("fastwebsockets-unmask", label), |b| {
            b.iter(|| {
                fastwebsockets::unmask(black_box(&mut dst), black_box(KEY));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
