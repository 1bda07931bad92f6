#!/usr/bin/env bash
# Gate a CI job on the checkpoints in a folder (default: examples/drive).
# Exit code: cnxp-audit's own (README "Verdicts and exit codes" says what each one asks of CI).
set -uo pipefail
folder="${1:-examples/drive}"
report="${REPORT:-cnxp-audit-report.md}"
command -v cnxp-audit >/dev/null || pip install --quiet "$(dirname "$0")/.."
cnxp-audit scan "$folder" --format markdown --output "$report" -j 2
status=$?
cat "$report" 2>/dev/null
case $status in
  0) echo "checkpoints OK" ;;
  1) echo "a checkpoint is not the model its name says" >&2 ;;
  2) echo "the audit command is wrong (options or output path); nothing was audited" >&2 ;;
  3) echo "a checkpoint could not be read: fetch it again (git lfs pull? Drive quota? cut download?)" >&2 ;;
  4) echo "UNSAFE: a checkpoint contains pickled code (nothing was executed); quarantine it" >&2 ;;
  5) echo "no checkpoint was audited: check the folder and the checkout" >&2 ;;
  70) echo "cnxp-audit hit a bug: rerun with -v and report it" >&2 ;;
  130) echo "interrupted" >&2 ;;
  *) echo "cnxp-audit failed (exit $status)" >&2 ;;
esac
exit $status
