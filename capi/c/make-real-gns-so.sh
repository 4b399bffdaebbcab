#!/usr/bin/env bash
# Builds Valve's real libGameNetworkingSockets.so (GNS 1.6) out of the static archive that the
# crate game-networking-sockets-sys leaves in a cargo target directory, so the programs in
# this folder can run against real GNS and against Sockworks' library by swapping one file.
#
#   capi/c/make-real-gns-so.sh [TARGET_DIR]      (default: $CARGO_TARGET_DIR, else ./target)
#
# Output, in TARGET_DIR/gns-real/:
#   libGameNetworkingSockets.so   soname libGameNetworkingSockets.so
#   include/steam/*.h             the public headers of the same build
#
# The archive comes from any profile's build (debug, release, ...): the newest one wins, or
# the one of PROFILE when that is set. It is linked whole (--whole-archive) so every exported
# function lands in the .so; the libraries it needs (protobuf, ssl, crypto, z, stdc++ and, for
# newer protobufs, abseil) are the ones game-networking-sockets-sys told cargo to link, read
# from its build-script output. Nothing is rebuilt when the .so is newer than the archive.
set -euo pipefail

target=${1:-${CARGO_TARGET_DIR:-target}}
target=$(cd "$target" 2>/dev/null && pwd) || {
    echo "make-real-gns-so: target directory '${1:-${CARGO_TARGET_DIR:-target}}' does not exist" >&2
    exit 1
}

# The newest archive of a finished game-networking-sockets-sys build (of PROFILE if set).
archive=$(ls -t "$target"/${PROFILE:-*}/build/game-networking-sockets-sys-*/out/lib/libGameNetworkingSockets_s.a \
    2>/dev/null | head -n 1 || true)
if [[ -z "$archive" ]]; then
    cat >&2 <<EOF
make-real-gns-so: no libGameNetworkingSockets_s.a under $target/${PROFILE:-*}/build/game-networking-sockets-sys-*/out/lib/.
Build the real GNS first, e.g.:
    CARGO_TARGET_DIR=$target cargo build -p sockworks-interop
(it needs: build-essential cmake protobuf-compiler libprotobuf-dev libssl-dev pkg-config clang libclang-dev)
EOF
    exit 1
fi
out_dir=$(dirname "$(dirname "$archive")")    # .../game-networking-sockets-sys-<hash>/out
build_output="$(dirname "$out_dir")/output"   # the build script's cargo: lines

dest="$target/gns-real"
so="$dest/libGameNetworkingSockets.so"
if [[ -f "$so" && "$so" -nt "$archive" && -d "$dest/include/steam" ]]; then
    echo "$so (up to date)"
    exit 0
fi
mkdir -p "$dest/include"

# The link line game-networking-sockets-sys gave cargo, minus GNS itself.
libs=()
if [[ -f "$build_output" ]]; then
    while IFS= read -r line; do
        case "$line" in
        cargo:rustc-link-search=*)
            dir=${line#cargo:rustc-link-search=}
            libs+=("-L${dir#native=}")
            ;;
        cargo:rustc-link-lib=*)
            lib=${line#cargo:rustc-link-lib=}
            case "$lib" in
            GameNetworkingSockets_s | static=GameNetworkingSockets_s) ;;
            static=*) libs+=("-Wl,-Bstatic" "-l${lib#static=}" "-Wl,-Bdynamic") ;;
            dylib=*) libs+=("-l${lib#dylib=}") ;;
            *) libs+=("-l$lib") ;;
            esac
            ;;
        esac
    done <"$build_output"
else
    libs=(-lprotobuf -lssl -lcrypto -lz -ldl -lstdc++)
fi

tmp="$so.tmp.$$"
trap 'rm -f "$tmp"' EXIT
${CXX:-c++} -shared -o "$tmp" \
    -Wl,-soname,libGameNetworkingSockets.so \
    -Wl,--whole-archive "$archive" -Wl,--no-whole-archive \
    "${libs[@]}" -lstdc++ -pthread -Wl,--no-undefined
mv -f "$tmp" "$so"

rm -rf "$dest/include/steam"
cp -r "$out_dir/include/GameNetworkingSockets/steam" "$dest/include/steam"
echo "$so"
