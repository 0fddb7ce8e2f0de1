#!/bin/sh
# Time and peak memory of `teal validate` refusing a "billion laughs"
# service file (nine lines standing for 9^9 strings), next to the same
# repo without the bomb. Usage: benches/hostile_yaml.sh [RUNS]
# (build first: cargo build --release). Needs GNU time (/usr/bin/time).
set -eu
runs=${1:-20}
teal=${TEAL:-$(dirname "$0")/../target/release/teal}
[ -x "$teal" ] || teal=${CARGO_TARGET_DIR:-target}/release/teal
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bomb/services" "$dir/plain/services"
svc='active: blue
blue: {image: app:1}
port: 8080
route: {host: a.example}
health: {http: {path: /healthz}}
'
printf '%s' "$svc" > "$dir/plain/services/web.yaml"
{
  printf '%s' "$svc"
  echo 'x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'
  for i in 1 2 3 4 5 6 7 8; do
    p="*a$((i - 1))"
    echo "x$i: &a$i [$p, $p, $p, $p, $p, $p, $p, $p, $p]"
  done
} > "$dir/bomb/services/web.yaml"
for case in plain bomb; do
  (cd "$dir/$case" && "$teal" validate > "$dir/out" 2>&1 || true)
  head -1 "$dir/out"
  i=0
  while [ $i -lt "$runs" ]; do
    t0=$(date +%s%N)
    (cd "$dir/$case" && /usr/bin/time -f '%M' -o "$dir/m" "$teal" validate > /dev/null 2>&1 || true)
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000)) $(grep -E '^[0-9]+$' "$dir/m")" > "$dir/t.$i"
    i=$((i + 1))
  done
  cat "$dir"/t.* | sort -n | awk -v c="$case" '{ s[NR] = $1; if ($2 > m) m = $2 }
    END { printf "%s: wall median %.1f ms (min %.1f, max %.1f), peak RSS max %d KiB, %d runs\n", c, s[int((NR + 1) / 2)] / 1000, s[1] / 1000, s[NR] / 1000, m, NR }'
  rm -f "$dir"/t.*
done
