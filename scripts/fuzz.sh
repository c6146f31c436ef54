#!/usr/bin/env bash
# Fuzz the media decoders and the parsers anyone on the internet can reach, 60 s each (not
# part of `make test`):
#   bash scripts/fuzz.sh              every target
#   bash scripts/fuzz.sh twilio_forms one target
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). The first build compiles the gateway with sanitizers (~15 min
# on 2 cores). Crashes are left in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(twilio_stream_message twilio_forms csv_import sdp_offer rtp_packet opus_decode g711_decode file_decode)
for target in "${TARGETS[@]}"; do
    echo "fuzz: $target for 60 s"
    cargo +nightly fuzz run -O "$target" -- -max_total_time=60
done
