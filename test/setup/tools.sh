#!/usr/bin/env bash
# Installs the tools of test/setup/tools.txt at their pinned versions into a versioned cache: those the tests
# need, and with --bench those the benchmark needs too,
#   ${BOXPROXY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxproxy/tools}/<name>-<version>/
# (go tools as bin/<name>, the wasmtime wheel as a pip --target directory). Instant when warm: one stat per tool.
# Go's and pip's own caches live under the same root, so an empty HOME works. When CI is set a failed install
# fails the run; elsewhere it warns and the tests needing that tool say so.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${BOXPROXY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxproxy/tools}"
wanted=(test)
[[ "${1:-}" == --bench ]] && wanted+=(bench)

# name version kind source, from tools.txt (comments and blank lines skipped)
entries=()
while read -r name version kind source for; do
  [[ -z "${name:-}" || "$name" == \#* ]] && continue
  [[ " ${wanted[*]} " == *" $for "* ]] || continue
  entries+=("$name $version $kind $source")
done <"$here/tools.txt"

missing=()
for entry in "${entries[@]}"; do
  read -r name version _ _ <<<"$entry"
  [[ -f "$cache/$name-$version/.installed" ]] || missing+=("$entry")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

fail() {
  if [[ -n "${CI:-}" ]]; then
    echo "tools.sh: ERROR: $1 (CI is set: the tests need it)" >&2
    exit 1
  fi
  echo "tools.sh: WARNING: $1; tests needing it will fail or say it is missing" >&2
  failed=1
}

mkdir -p "$cache"
# Other worktrees share the cache: one installer at a time; each checks again under the lock.
exec 9>"$cache/.lock"
flock 9

# Go: module and build caches inside the tool cache; no toolchain download (the machine's go must do),
# static binaries (no cgo, so no C toolchain), read-write module cache so the directory can be removed.
export GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
export PIP_CACHE_DIR="$cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

install_go() { # dir version path
  local tmp="$1.tmp" name
  name="$(basename "$1")"; name="${name%-"$2"}"
  command -v go >/dev/null || { fail "go is not installed (needed for $name $2)"; return; }
  rm -rf "$tmp" && mkdir -p "$tmp/bin"
  # go's download and build chatter goes to a log, shown when the install fails.
  if GOBIN="$tmp/bin" nice -n 10 go install -trimpath -ldflags='-s -w' "$3@$2" >"$1.log" 2>&1; then
    mv "$tmp/bin/$(basename "$3")" "$tmp/bin/$name.new" && mv "$tmp/bin/$name.new" "$tmp/bin/$name"
    "$tmp/bin/$name" --help >/dev/null 2>&1 || "$tmp/bin/$name" version >/dev/null 2>&1 || { fail "$name $2 was built but does not run"; return; }
    finish "$1" "$tmp"
  else
    tail -n 30 "$1.log" >&2
    fail "go install $3@$2 failed (log: $1.log)"
  fi
}

install_pypi() { # dir version package
  local tmp="$1.tmp"
  local python="${BOXPROXY_PYTHON:-python3}"
  command -v "$python" >/dev/null || { fail "$python is not installed (needed for $3 $2)"; return; }
  rm -rf "$tmp" && mkdir -p "$tmp"
  if nice -n 10 "$python" -m pip install --quiet --only-binary=:all: --target "$tmp" "$3==$2" >"$1.log" 2>&1 &&
    PYTHONPATH="$tmp" "$python" -c "import $3" >&2; then
    # The interpreter itself, not a wrapper such as pyenv's shim (which costs more than the run it starts).
    "$python" -c 'import sys; print(sys.executable)' >"$tmp/.python"
    finish "$1" "$tmp"
  else
    tail -n 30 "$1.log" >&2
    fail "pip install $3==$2 failed (log: $1.log)"
  fi
}

finish() { # dir tmp: the directory appears complete or not at all
  touch "$2/.installed"
  rm -rf "$1" && mv "$2" "$1"
}

failed=0
for entry in "${missing[@]}"; do
  read -r name version kind source <<<"$entry"
  dir="$cache/$name-$version"
  [[ -f "$dir/.installed" ]] && continue
  started=$SECONDS
  echo "tools.sh: installing $name $version ($kind $source)" >&2
  case "$kind" in
    go) install_go "$dir" "$version" "$source" ;;
    pypi) install_pypi "$dir" "$version" "$source" ;;
    *) fail "tools.txt: unknown kind $kind for $name" ;;
  esac
  [[ -f "$dir/.installed" ]] && echo "tools.sh: $name $version ready ($((SECONDS - started)) s)" >&2
done
# The binaries are all that is used: Go's build and module caches (GiBs for cosign) go once the installs are done.
if [[ $failed -eq 0 && -d "$cache/go" ]]; then
  go clean -cache -modcache >/dev/null 2>&1 || true
  rm -rf "$cache/go"
fi
exit 0
