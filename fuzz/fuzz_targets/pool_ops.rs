#![no_main]
#[path = "../harness/pool_ops.rs"]
mod pool_ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| pool_ops::pool_ops(data));
