#!/usr/bin/env bash
# Gate a CI job on the checkpoints in a folder (default: examples/drive).
# Exit code: 0 fine, 1 label mismatch / labelled unknown, 3 unreadable, 4 unsafe (see README).
set -uo pipefail
folder="${1:-examples/drive}"
report="${REPORT:-cnxp-audit-report.md}"
command -v cnxp-audit >/dev/null || pip install --quiet "$(dirname "$0")/.."
cnxp-audit scan "$folder" --format markdown --output "$report" -j 2
status=$?
cat "$report" 2>/dev/null
case $status in
  0) echo "checkpoints OK" ;;
  1) echo "a checkpoint's label does not match its architecture" >&2 ;;
  3) echo "a checkpoint could not be read" >&2 ;;
  4) echo "UNSAFE: a checkpoint contains pickled code (nothing was executed)" >&2 ;;
  *) echo "cnxp-audit failed (exit $status)" >&2 ;;
esac
exit $status
