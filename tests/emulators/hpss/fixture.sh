# Sourced by the tests and benchmarks that run the HPSS EMULATOR.
# hpss_tape_files DIR N: N small files DIR/f000.dat ... (DIR relative to
# $HPSS_EMU_ROOT, e.g. /home/elvis/data) spread over 3 tapes so that name
# order is far from tape order: file i is on volume VOL(i % 3) at section
# (i * 7) % N + 1. Writes the emulator's layout file $HPSS_EMU_STATE/layout.
hpss_tape_files() {
  local dir=$1 n=$2 i f
  mkdir -p "$HPSS_EMU_ROOT$dir" "$HPSS_EMU_STATE"
  for i in $(seq 0 $((n - 1))); do
    f=$(printf 'f%03d.dat' "$i")
    echo "file $i $(printf '%0100d' "$i")" >"$HPSS_EMU_ROOT$dir/$f"
    printf '%s/%s VOL%05d00 %d\n' "$dir" "$f" $((i % 3)) $(((i * 7) % n + 1))
  done >"$HPSS_EMU_STATE/layout"
}

# hpss_backend_head FILE: appends the [[backend]] table of an hpss backend
# named "hpss" with root /home/elvis over this emulator; callers append the
# table's other keys.
HPSS_EMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hpss_backend_head() {
  cat >>"$1" <<TOML
[[backend]]
name = "hpss"
type = "hpss"
root = "/home/elvis"
hsi = "$HPSS_EMU_DIR/hsi"
htar = "$HPSS_EMU_DIR/htar"
TOML
}
