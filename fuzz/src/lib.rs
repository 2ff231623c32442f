//! Checks shared by the hybi fuzz targets (and replayed by the engine's
//! `tests/fuzz_regressions.rs`).
pub mod alloc;
pub mod conn;
pub mod deflate;
pub mod frame_header;
pub mod handshake;
pub mod structured;
