#!/usr/bin/env bash
# Cleans up after a control plane whose owner died without stopping it (SIGKILL, a crashed
# test runner, Ctrl-C mid-teardown): kills every process listed in $2/pids and removes $2, by
# running $3 with $2 when given (a node's cleanup: its pods, mounts, cgroups, network namespace).
# Exits quietly once $2 is gone, which is what a clean stop leaves.
set -u
owner="$1" dir="$2" cleanup="${3:-}"
while kill -0 "$owner" 2>/dev/null && [[ -d "$dir" ]]; do sleep 1; done
[[ -d "$dir" ]] || exit 0
# One pid per file, written without a newline: awk ends each file's line (cat would join them).
pids=$(awk 1 "$dir"/pids/* 2>/dev/null)
[[ -n "$pids" ]] && kill -TERM $pids 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
  alive=""
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
  [[ -z "$alive" ]] && break
  sleep 0.5
done
[[ -n "${alive:-}" ]] && kill -KILL $alive 2>/dev/null
[[ -n "$cleanup" ]] && bash "$cleanup" "$dir"
rm -rf "$dir"
