#!/usr/bin/env bash
# Check that the C++ sources under cpp/ are in the style of .clang-format:
#
#   tools/check-clang-format.sh          check (exit 1 when a checked file would change)
#   tools/check-clang-format.sh --all    also report the pending files, and fail on them
#
# Runs `clang-format --dry-run -Werror` on every *.cpp / *.hpp under cpp/ that git
# tracks or that is new and not ignored. Files matching a pattern in
# .clang-format-pending (shell globs, one a line, '#' comments) are not yet in the style:
# they are counted and named but do not fail the check, until they are reformatted and
# their line is removed. The clang-format binary is $CLANG_FORMAT (default clang-format);
# the pinned PyPI wheel comes with pip install -e ".[dev]" (pyproject.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"
all=0
case "${1:-}" in
  "") ;;
  --all) all=1 ;;
  *) echo "usage: $0 [--all]" >&2; exit 2 ;;
esac

patterns=()
if [ -f .clang-format-pending ]; then
  while IFS= read -r line; do
    line="${line%%#*}"
    line="${line%"${line##*[![:space:]]}"}"
    [ -n "$line" ] && patterns+=("$line")
  done < .clang-format-pending
fi

pending() {
  local f="$1" p
  for p in "${patterns[@]+"${patterns[@]}"}"; do
    # shellcheck disable=SC2053  # the pattern is a glob on purpose
    [[ "$f" == $p ]] && return 0
  done
  return 1
}

checked=0 failed=0 waiting=0 waiting_dirty=0
failures=() dirty_pending=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  if pending "$f" && [ "$all" = 0 ]; then
    waiting=$((waiting + 1))
    if ! "$CLANG_FORMAT" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
      waiting_dirty=$((waiting_dirty + 1))
      dirty_pending+=("$f")
    fi
    continue
  fi
  checked=$((checked + 1))
  if ! "$CLANG_FORMAT" --style=file --dry-run -Werror "$f" 2>/dev/null; then
    failed=$((failed + 1))
    failures+=("$f")
  fi
done < <(git ls-files --cached --others --exclude-standard -- 'cpp/*.cpp' 'cpp/*.hpp' | sort -u)

echo "clang-format ($("$CLANG_FORMAT" --version | sed 's/.*version //')): $checked files checked," \
  "$failed would change; $waiting pending (.clang-format-pending), $waiting_dirty of them not yet formatted"
for f in "${dirty_pending[@]+"${dirty_pending[@]}"}"; do echo "  pending: $f"; done
if [ "$failed" -gt 0 ]; then
  printf '  would change: %s\n' "${failures[@]}"
  echo "run: $CLANG_FORMAT -i --style=file <file>" >&2
  exit 1
fi
