#!/usr/bin/env bash
# Everything the test suite needs on a new machine, before node's test runner starts: each step installs or
# builds what is missing, caches it for the next run, and fails (never skips) when CI is set.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/deps.sh"
bash "$here/tools.sh"
node --import tsx "$here/runtimes.ts"
node --import tsx "$here/corpus.ts"
