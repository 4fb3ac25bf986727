#!/bin/sh
# check-style.sh — the grep gate of docs/architecture.md: functions that invite
# overflows or silent parse errors are not used anywhere in the C sources.
set -eu
cd "$(dirname "$0")/.."
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atof|strtok)[[:space:]]*\('
if grep -rnE "$banned" src tests fuzz --include='*.c' --include='*.h'; then
    echo "check-style: banned function used (use snprintf, memcpy with a length, strtol)" >&2
    exit 1
fi
echo "check-style: no banned functions in $(find src tests fuzz -name '*.[ch]' | wc -l) files"

# Every API route in the router's table is documented in docs/api.md's route table.
missing=$(grep -oE '^\s*\{"(GET|POST|PATCH|PUT|DELETE)", "[^"]+"' src/api/api.c |
    sed -E 's/^\s*\{"([A-Z]+)", "([^"]+)"/\1 \2/' |
    while read -r method path; do
        grep -qF "| $method | $path |" docs/api.md || echo "$method $path"
    done)
if [ -n "$missing" ]; then
    echo "check-style: API routes missing from docs/api.md's table:" >&2
    echo "$missing" >&2
    exit 1
fi
echo "check-style: every API route is in docs/api.md"
