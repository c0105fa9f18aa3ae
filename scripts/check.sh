#!/usr/bin/env bash
# make check: the committed generated code and the C formatting are what they should be.
#  1. src/proto/gen and tests/gen/fill (the unit tests' message fillers) equal what
#     tools/genproto.py makes from Kafka's JSON schemas, looked for in $KAFKA_PROTOCOL_DIR or
#     ../shared/kafka-protocol (next to the repository); skipped, saying so, when neither
#     exists (CI has only the repository).
#  2. clang-format --dry-run -Werror over src/, tests/unit/ and tests/support/, except generated
#     files: src/proto/gen/, tests/gen/ (checked by 1) and tests/unit/test_proto_xcheck.c
#     (tools/genproto_xcheck.py).
# Exit status 0 when every check that ran passed.
set -u
cd "$(dirname "$0")/.."
status=0

proto=${KAFKA_PROTOCOL_DIR:-../shared/kafka-protocol}
if [ -d "$proto/messages" ]; then
  tmp=$(mktemp -d /tmp/gregor-check.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  if ! python3 tools/genproto.py "$proto" "$tmp/gen" "$tmp/fill" >/dev/null; then
    echo "check: tools/genproto.py failed" >&2
    status=1
  else
    for pair in "gen:src/proto/gen" "fill:tests/gen/fill"; do
      out=${pair%%:*} dir=${pair#*:}
      if ! diff -r "$tmp/$out" "$dir" >"$tmp/diff"; then
        echo "check: $dir differs from tools/genproto.py $proto output:" >&2
        head -n 40 "$tmp/diff" >&2
        echo "check: regenerate with: python3 tools/genproto.py $proto src/proto/gen" >&2
        status=1
      else
        echo "check: $dir matches tools/genproto.py"
      fi
    done
  fi
else
  echo "check: SKIPPED protocol regeneration: no $proto/messages (set KAFKA_PROTOCOL_DIR)"
fi

mapfile -t files < <(find src tests/unit tests/support -name '*.[ch]' ! -path 'src/proto/gen/*' \
                       ! -path tests/unit/test_proto_xcheck.c | sort)
if ! command -v clang-format >/dev/null; then
  echo "check: clang-format not installed (scripts/install-deps.sh installs it)" >&2
  status=1
elif ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "check: files above differ from .clang-format; run make format" >&2
  status=1
else
  echo "check: ${#files[@]} C files formatted"
fi
exit $status
