#!/usr/bin/env bash
# Debian source packages for the runtime builds, through a private apt configuration: the machine's own apt
# sources (which on a new machine carry no deb-src entry) are neither read nor changed, and no root is needed.
#
# Sourced by scripts/runtimes/<name>/build.sh:
#   debian_source_version <suite> <package>            newest version in <suite> (and <suite>-updates), or
#                                                      nothing when the package is not there
#   debian_source_fetch <suite> <package>=<version> <dir>
#                                                      the .dsc and its tarballs, signature-checked, into <dir>
#   debian_source_unpack <dir> <package> <dest>        dpkg-source -x: upstream source with Debian's patch series
# Run as a command (the tests do): debian-source.sh version <suite> <package>
# Suites: bookworm, trixie. State lives in $DEBIAN_SOURCE_STATE (build scripts set <cache-dir>/apt; default
# ~/.cache/boxproxy/runtimes/apt), refreshed when older than a day so security updates reach the next build.

debian_source_dir() { echo "${DEBIAN_SOURCE_STATE:-${BOXPROXY_RUNTIME_CACHE:-${HOME}/.cache/boxproxy/runtimes}/apt}/$1"; }

debian_source_opts() {
  local d
  d="$(debian_source_dir "$1")"
  printf '%s\n' -o "Dir::Etc::sourcelist=$d/sources.list" -o "Dir::Etc::sourceparts=$d/sources.list.d" \
    -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "Dir::State::status=/dev/null" \
    -o "Acquire::Languages=none" -o "APT::Sandbox::User=$(id -un)"
}

# Writes the suite's deb-src entries and runs apt-get update when the lists are missing or a day old.
debian_source_update() {
  local suite="$1" d opts
  case "$suite" in bookworm|trixie) ;; *) echo "debian-source: unknown suite $suite" >&2; return 2 ;; esac
  d="$(debian_source_dir "$suite")"
  mkdir -p "$d/lists/partial" "$d/sources.list.d" "$d/cache/archives/partial"
  : > "$d/sources.list"
  cat > "$d/sources.list.d/debian-src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  mapfile -t opts < <(debian_source_opts "$suite")
  (
    flock 8
    if [[ -z "$(find "$d/lists" -maxdepth 1 -name '*_Sources*' -mmin -1440 -print -quit)" ]]; then
      apt-get "${opts[@]}" update -qq >&2 || { echo "debian-source: apt-get update for $suite deb-src failed" >&2; exit 1; }
    fi
  ) 8>"$d/.update.lock"
}

debian_source_version() {
  local suite="$1" pkg="$2" opts
  debian_source_update "$suite" || return 1
  mapfile -t opts < <(debian_source_opts "$suite")
  # showsrc exits non-zero for an unknown package: that is "not there", an empty answer.
  { apt-cache "${opts[@]}" showsrc "$pkg" 2>/dev/null || true; } \
    | awk -v p="$pkg" '/^Package:/{ok=($2==p)} ok&&/^Version:/{print $2}' | sort -V | tail -n 1
}

debian_source_fetch() {
  local suite="$1" spec="$2" dir="$3" opts
  debian_source_update "$suite" || return 1
  mapfile -t opts < <(debian_source_opts "$suite")
  mkdir -p "$dir"
  (cd "$dir" && apt-get "${opts[@]}" source -qq --download-only "$spec" >&2)
}

debian_source_unpack() {
  local dir="$1" pkg="$2" dest="$3" dsc
  dsc="$(ls "$dir"/"${pkg}"_*.dsc)"
  # apt-get source checked the files against the signed Sources index; dpkg-source checks them against the .dsc
  # and applies Debian's patch series (its security fixes among them): --skip-patches is never passed.
  dpkg-source -x "$dsc" "$dest" >&2
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    version) [[ $# -eq 3 ]] || { echo "usage: $0 version <suite> <package>" >&2; exit 2; }; debian_source_version "$2" "$3" ;;
    *) echo "usage: $0 version <suite> <package>" >&2; exit 2 ;;
  esac
fi
