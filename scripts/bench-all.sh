#!/usr/bin/env bash
# Every benchmark target of docs/BENCHMARKS.md, one after another (run it on a
# quiet machine: the ratios are interleaved, but two benches at once share the
# two cores). Full logs in $OUT (default /tmp/tokensmith-bench), the ratio lines
# in $OUT/summary.log. The CLI-vs-cat comparison is separate (scripts/interleave.py).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/tokensmith-bench}
mkdir -p "$OUT"
run() {
  local name=$1; shift
  echo "== $name $(date +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.log"
  "$@" > "$OUT/$name.log" 2>&1 || echo "   (exit $?)" | tee -a "$OUT/summary.log"
  grep -hE "interleaved|ratio|p50|p99|requests/s|time:" "$OUT/$name.log" \
    | grep -v "^Benchmarking" | tail -14 | tee -a "$OUT/summary.log"
}
cargo bench -p tokensmith-core -p tokensmith-reqwest -p tokensmith-cli -p tokensmith-redis --no-run
for i in 1 2; do
  run "fetch_rps_$i" cargo bench -p tokensmith-core --bench cache -- fetch/rps
  run "hit_$i" cargo bench -p tokensmith-core --bench cache -- hit/ratio
  run "current_$i" cargo bench -p tokensmith-core --bench cache -- current/ratio
  run "middleware_$i" cargo bench -p tokensmith-reqwest --bench middleware -- middleware/p50
  run "serve_$i" cargo bench -p tokensmith-cli --bench serve
done
run hit_store cargo bench -p tokensmith-core --bench cache -- hit_store/ratio
run cold_start cargo bench -p tokensmith-core --bench cache -- cold_start/
run redis_hit cargo bench -p tokensmith-redis --bench redis -- redis_hit/ratio
echo "== done $(date +%T)" | tee -a "$OUT/summary.log"
