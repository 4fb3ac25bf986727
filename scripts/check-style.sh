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
