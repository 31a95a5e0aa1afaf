# Sourced by the tests and benchmarks that run the iRODS EMULATOR.
# start_emu NAME ARGS...: starts irods_emu.py ARGS on a free loopback port,
# logging to $WORK/NAME.log, waits until it listens and sets PORT. The caller
# provides WORK, PIDS (stopped at exit) and fail.
IRODS_EMU=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/irods_emu.py

start_emu() {
  local name=$1 i
  shift
  "$IRODS_EMU" --port 0 --port-file "$WORK/$name.port" --log "$WORK/$name.log" "$@" \
    >"$WORK/$name.out" 2>&1 &
  PIDS+=($!)
  disown $!  # stopped by the caller's cleanup, without a "Killed" line
  for i in $(seq 1 600); do
    [ -s "$WORK/$name.port" ] && break
    sleep 0.1
  done
  [ -s "$WORK/$name.port" ] || fail "emulator $name did not start: $(cat "$WORK/$name.out")"
  PORT=$(cat "$WORK/$name.port")
}
