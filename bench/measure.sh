# Sourced by the benchmark scripts: runs one command under GNU time and sets WALL (seconds), CPU
# (user + system seconds) and RSS (peak resident set, MiB); stops the script if the command fails.
measure() { # measure LOG cmd...
  local log=$1
  shift
  if ! /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$log.stderr"; then
    echo "failed: $*" >&2
    cat "$log.stderr" "$log" >&2
    exit 1
  fi
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$log")
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
  CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {printf "%.1f", s}' "$log")
}
