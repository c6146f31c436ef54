//! Opus encode, decode, concealment and FEC decode allocate nothing per frame once the coder
//! exists: a counting global allocator sees every Rust-side allocation on this thread. (libopus
//! itself keeps its scratch on the stack; its own mallocs happen only in `*_create`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use callcenter::media::opus::{MAX_PACKET_BYTES, OpusDecoder, OpusEncoder, OpusEncoderConfig, frame_len_20ms};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_call_second_of_opus_frames_allocates_nothing() {
    for rate in [8000, 16000, 48000] {
        let frame = frame_len_20ms(rate);
        let pcm: Vec<i16> = (0..frame * 50).map(|n| ((n as f32 * 700.0 / rate as f32).sin() * 9000.0) as i16).collect();
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::voip(rate)).unwrap();
        // A second encoder for `encode`, which writes into the encoder's own buffer.
        let mut own_buffer_encoder = OpusEncoder::new(OpusEncoderConfig::voip(rate)).unwrap();
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; frame];
        let mut packet = vec![0u8; MAX_PACKET_BYTES];

        let before = allocations();
        let (mut decoded, mut own_buffer_bytes) = (0, 0);
        for (i, chunk) in pcm.chunks_exact(frame).enumerate() {
            let len = encoder.encode_into(chunk, &mut packet).unwrap();
            own_buffer_bytes += own_buffer_encoder.encode(chunk).unwrap().len();
            match i % 10 {
                // Lost and concealed.
                3 => decoded += decoder.conceal_into(&mut out).unwrap(),
                // Lost, then recovered from the next packet's FEC copy before that one decodes.
                6 => {}
                7 => {
                    decoded += decoder.decode_fec_into(&packet[..len], &mut out).unwrap();
                    decoded += decoder.decode_into(&packet[..len], &mut out).unwrap();
                }
                _ => decoded += decoder.decode_into(&packet[..len], &mut out).unwrap(),
            }
        }
        let during = allocations() - before;

        assert!(own_buffer_bytes > 0);
        assert_eq!(decoded, frame * 50, "rate {rate}: every frame decoded, concealed or recovered");
        assert_eq!(during, 0, "rate {rate}: {during} allocations in 50 frames");
    }
}
