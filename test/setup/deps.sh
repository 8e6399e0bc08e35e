#!/usr/bin/env bash
# Ensures the Debian packages the integration tests and the benchmark drive are installed.
# Idempotent and fast when everything is present: one dpkg-query, no apt unless something is missing.
# It starts no services: each test starts what it needs on free loopback ports and stops it.
set -euo pipefail

# isal: igzip, which writes Box layers (src/convert/gzip/igzip.ts).
# llvm + dpkg-dev + python3.11: scripts/runtimes/python/build.sh (CPython for WASI from Debian's source package).
# time: GNU time, peak RSS of the processes bench/node.ts starts.
# clang-19 + lld-19 + llvm-19 + libclang-rt-19-dev-wasm32: scripts/runtimes/quickjs/build.sh (QuickJS for WASI).
# debootstrap + attr (getfattr): the real-image corpus (test/corpus/build.ts).
packages=(docker-registry skopeo containerd apache2-utils wrk curl isal clang lld llvm wasi-libc libclang-rt-14-dev-wasm32 dpkg-dev python3.11 openssl
  clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 time debootstrap attr)
# Binaries the tests exec, checked too: a package can be "installed" while its binary was removed.
binaries=(docker-registry skopeo containerd ctr htpasswd wrk curl igzip clang wasm-ld llvm-ar-14 llvm-strip-14 dpkg-source openssl clang-19 llvm-strip-19
  debootstrap getfattr)

missing=()
missing_bin=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
for bin in "${binaries[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing_bin+=("$bin")
done

if [[ ${#missing[@]} -eq 0 && ${#missing_bin[@]} -eq 0 ]]; then
  exit 0
fi

echo "deps.sh: missing packages: ${missing[*]:-none}; missing binaries: ${missing_bin[*]:-none}" >&2

fail() {
  if [[ -n "${CI:-}" ]]; then
    echo "deps.sh: ERROR: $1 (CI is set, the integration tests cannot run without these)" >&2
    exit 1
  fi
  echo "deps.sh: WARNING: $1; integration tests needing them will be skipped" >&2
  exit 0
}

if [[ $(id -u) -ne 0 ]]; then
  fail "cannot install packages: not root (install: apt-get install -y ${packages[*]})"
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt on the same machine holds the dpkg lock for a while: wait for it rather than fail.
lock=(-o DPkg::Lock::Timeout=600)
apt-get update -qq || fail "apt-get update failed"
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get install "${lock[@]}" -y -qq --no-install-recommends "${missing[@]}" >&2 || fail "apt-get install -y ${missing[*]} failed"
fi
# A package can be "installed" while its binary was deleted; reinstalling restores it.
if [[ ${#missing_bin[@]} -gt 0 ]]; then
  apt-get install "${lock[@]}" -y -qq --reinstall --no-install-recommends "${packages[@]}" >&2 || fail "apt-get install --reinstall failed"
fi
for bin in "${binaries[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || fail "$bin still missing after installing ${packages[*]}"
done
echo "deps.sh: dependencies installed" >&2
