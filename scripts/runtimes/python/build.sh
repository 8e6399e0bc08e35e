#!/usr/bin/env bash
# Builds CPython for WASI (wasm32-wasi, preview1 command) from Debian's python3.11 source package, with zlib
# from Debian's zlib source package, using Debian's clang/lld/llvm/wasi-libc. Recipe: shared/reference/wasm.md.
# boxproxy's own WASI patches (patches/*.patch) are applied on top: wasi-sys-path0.patch gives sys.path[0] the
# absolute directory platforms with realpath() give it (WASI has none: "-m" got "." and a relative script "").
#
# Usage: build.sh [--cache-dir DIR] [--force]
#   Prints the output directory (last stdout line); logs go to stderr.
# Output directory:
#   python.wasm                         stripped interpreter (WASI preview1 command)
#   lib/python3.11/                     pruned stdlib (+ unchecked-hash .pyc) and lib-dynload/ (sysconfigdata)
#   manifest.json                       version, build inputs (source packages + sha256, toolchain, flags)
# The output is cached under a key hashing this script, the source package versions and the toolchain package
# versions, so a second call is instant and concurrent callers wait for a single build (flock).
set -euo pipefail

cache_dir="${BOXPROXY_RUNTIME_CACHE:-${HOME}/.cache/boxproxy/runtimes}"
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cache-dir) cache_dir="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: ERROR: $*" >&2; exit 1; }

script_path="$(readlink -f "$0")"
py_src_pkg=python3.11
zlib_src_pkg=zlib
py_minor=3.11
build_python=/usr/bin/python3.11
toolchain_pkgs=(clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32)

# --- prerequisites --------------------------------------------------------------------------------------------
need_pkgs=()
for p in clang lld llvm wasi-libc libclang-rt-14-dev-wasm32 dpkg-dev python3.11; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || need_pkgs+=("$p")
done
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "missing packages ${need_pkgs[*]} and not root to install them"
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi
[[ -x "$build_python" ]] || die "$build_python missing (the build python must be the same major.minor)"

# Source packages come through a private apt configuration (scripts/runtimes/lib/debian-source.sh): a new machine's
# stock apt sources have no deb-src entry, and the build neither needs one nor adds one.
DEBIAN_SOURCE_STATE="$cache_dir/apt"
source "$(dirname "$script_path")/../lib/debian-source.sh"
py_ver="$(debian_source_version bookworm "$py_src_pkg")" || die "cannot read Debian's bookworm source index"
zlib_ver="$(debian_source_version bookworm "$zlib_src_pkg")" || die "cannot read Debian's bookworm source index"
[[ -n "$py_ver" && -n "$zlib_ver" ]] || die "Debian bookworm has no source package $py_src_pkg or $zlib_src_pkg"

toolchain_versions="$(dpkg-query -W -f='${Package}=${Version}\n' "${toolchain_pkgs[@]}" | sort)"
# boxproxy's own patches for the WASI build (patches/*.patch, applied in name order after unpacking).
patch_dir="$(dirname "$script_path")/patches"
mapfile -t wasi_patches < <(ls "$patch_dir"/*.patch 2>/dev/null | LC_ALL=C sort)
key="$( { sha256sum "$script_path" | cut -d' ' -f1; for p in "${wasi_patches[@]}"; do sha256sum "$p" | cut -d' ' -f1; done
          echo "$py_src_pkg=$py_ver"; echo "$zlib_src_pkg=$zlib_ver";
          echo "$toolchain_versions"; } | sha256sum | cut -c1-16)"
out="$cache_dir/python-$py_minor-$key"

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.python-$key.lock"
flock 9
if [[ $force -eq 0 && -f "$out/manifest.json" ]]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi
rm -rf "$out"

work="$(mktemp -d "$cache_dir/.build-python-$key.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "building CPython $py_ver + zlib $zlib_ver for wasm32-wasi in $work (key $key)"

# --- sources ----------------------------------------------------------------------------------------------------
mkdir -p "$work/src"
debian_source_fetch bookworm "$py_src_pkg=$py_ver" "$work/src" || die "apt-get source $py_src_pkg=$py_ver failed"
debian_source_fetch bookworm "$zlib_src_pkg=$zlib_ver" "$work/src" || die "apt-get source $zlib_src_pkg=$zlib_ver failed"
# The verified recipe builds upstream's tree as Debian ships it (the .orig tarball); Debian's patch series
# (multiarch layout, packaging) targets Linux installs and is not applied.
py_orig="$(ls "$work/src"/python3.11_*.orig.tar.*)"
zlib_orig="$(ls "$work/src"/zlib_*.orig.tar.*)"
mkdir -p "$work/python" "$work/zlib"
tar -xf "$py_orig" -C "$work/python" --strip-components=1
tar -xf "$zlib_orig" -C "$work/zlib" --strip-components=1

for p in "${wasi_patches[@]}"; do
  patch -p1 --quiet --no-backup-if-mismatch -d "$work/python" < "$p" >&2 || die "patch $(basename "$p") does not apply"
done

# Fixed timestamp: the Debian changelog date of the python3.11 source package.
py_debian_tar="$(ls "$work/src"/python3.11_*.debian.tar.*)"
changelog_date="$(tar -xOf "$py_debian_tar" debian/changelog | sed -n 's/^ -- .*>  //p' | sed -n 1p)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(date -d "$changelog_date" +%s)}"
export LC_ALL=C TZ=UTC

# Paths in compiled objects point at stable names, not this temporary directory.
prefix_map="-ffile-prefix-map=$work/python=/usr/src/python3.11 -ffile-prefix-map=$work/build=/usr/src/python3.11/build -ffile-prefix-map=$work/zlib=/usr/src/zlib -ffile-prefix-map=$work=/usr/src"
wasi_cc="clang --target=wasm32-wasi"

# --- zlib (static, wasm32-wasi) -------------------------------------------------------------------------------
zlib_cflags="-O2 $prefix_map"
(
  cd "$work/zlib"
  CC="$wasi_cc" AR=llvm-ar-14 RANLIB=llvm-ranlib-14 CFLAGS="$zlib_cflags" CHOST=wasm32-wasi \
    ./configure --static --prefix="$work/zlib-install" >&2
  make -j2 libz.a >&2
  make install >&2
)
[[ -f "$work/zlib-install/lib/libz.a" ]] || die "zlib build failed"

# --- CPython ----------------------------------------------------------------------------------------------------
# __DATE__/__TIME__ in the build info would make every build differ (clang 14 ignores SOURCE_DATE_EPOCH).
build_date="$(date -u -d "@$SOURCE_DATE_EPOCH" '+%b %e %Y')"
build_time="$(date -u -d "@$SOURCE_DATE_EPOCH" '+%H:%M:%S')"
sed -i "s/^#define DATE __DATE__\$/#define DATE \"$build_date\"/; s/^#define TIME __TIME__\$/#define TIME \"$build_time\"/" \
  "$work/python/Modules/getbuildinfo.c"
grep -q "^#define DATE \"$build_date\"" "$work/python/Modules/getbuildinfo.c" || die "could not pin the build date"
# WASI preview1 has no working directory: a Box's WorkingDir arrives as PWD (boxproxy's runner sets it, and the
# Box's Env carries it for other runtimes). wasi-libc emulates chdir, so entering PWD before CPython reads its
# configuration makes relative script paths and relative opens resolve like they did in the image.
pymain="$work/python/Programs/python.c"
perl -0pi -e 's/(main\(int argc, char \*\*argv\)\n\{\n)(\s*return Py_BytesMain)/$1#ifdef __wasi__\n    {\n        const char *pwd = getenv("PWD");\n        if (pwd != NULL \&\& pwd[0] == \x27\/\x27) {\n            (void)chdir(pwd);\n        }\n    }\n#endif\n$2/' "$pymain"
grep -q 'getenv("PWD")' "$pymain" || die "could not add the PWD start-up to $pymain"

py_cflags="-D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_MMAN $prefix_map"
py_ldflags="-lwasi-emulated-signal -lwasi-emulated-getpid -lwasi-emulated-process-clocks -lwasi-emulated-mman -Wl,--stack-first -Wl,-z,stack-size=8388608 -Wl,--initial-memory=33554432"
na_modules=(_uuid _lzma _crypt _bz2 _ctypes _sqlite3 _ssl _hashlib readline _curses _curses_panel _dbm _gdbm
  _tkinter nis _testcapi _testinternalcapi _testbuffer _testimportmultiple _testmultiphase _ctypes_test
  _xxtestfuzz _testclinic xxlimited xxlimited_35 xxsubtype _xxsubinterpreters)
configure_args=(--host=wasm32-unknown-wasi --build=x86_64-pc-linux-gnu "--with-build-python=$build_python"
  --disable-ipv6 --without-ensurepip --prefix=/usr/local)
mkdir -p "$work/build"
(
  # A relative srcdir: getpath.c embeds VPATH, and an absolute one would differ with every build directory.
  cd "$work/build"
  na_env=()
  for m in "${na_modules[@]}"; do na_env+=("py_cv_module_$m=n/a"); done
  env CONFIG_SITE="$work/python/Tools/wasm/config.site-wasm32-wasi" \
    CC="$wasi_cc" CPP="$wasi_cc -E" AR=llvm-ar-14 RANLIB=llvm-ranlib-14 \
    CFLAGS="$py_cflags" LDFLAGS="$py_ldflags" \
    PKG_CONFIG_LIBDIR=/nonexistent \
    ZLIB_CFLAGS="-I$work/zlib-install/include" ZLIB_LIBS="-L$work/zlib-install/lib -lz" \
    ac_cv_func_memfd_create=no "${na_env[@]}" \
    ../python/configure "${configure_args[@]}" >"$work/configure.log" 2>&1 \
    || { tail -40 "$work/configure.log" >&2; die "configure failed"; }
  make -j2 >"$work/make.log" 2>&1 || { tail -60 "$work/make.log" >&2; die "make failed"; }
)
[[ -f "$work/build/python.wasm" ]] || die "no python.wasm produced"
grep -q "^MODULE_ZLIB_STATE=yes" "$work/build/Makefile" || die "zlib module not enabled (see configure.log)"

# --- output -----------------------------------------------------------------------------------------------------
stage="$work/out"
stdlib="$stage/lib/python$py_minor"
mkdir -p "$stdlib"
llvm-strip-14 -o "$stage/python.wasm" "$work/build/python.wasm"
# Pruned stdlib: no test suites, no GUI/IDE, no installers/2to3 (cannot work or are not needed in a Box), and
# packages whose C module this build does not have (_ctypes, _sqlite3, _curses) or that cannot work under WASI
# (msilib: Windows; venv: no interpreter to copy; pydoc_data: interactive help topics only).
(cd "$work/python/Lib" && find . \( -type d \( -name test -o -name tests -o -name idle_test -o -name __pycache__ \
    -o -path ./idlelib -o -path ./tkinter -o -path ./turtledemo -o -path ./ensurepip -o -path ./lib2to3 \
    -o -path ./ctypes -o -path ./sqlite3 -o -path ./curses -o -path ./msilib -o -path ./venv -o -path ./pydoc_data \) -prune \) \
    -o \( -type f ! -path ./turtle.py -print \) | LC_ALL=C sort > "$work/stdlib-files.txt")
(cd "$work/python/Lib" && tar -cf - --no-recursion -T "$work/stdlib-files.txt") | tar -xf - -C "$stdlib"
plat_dir="$(ls -d "$work/build"/build/lib.wasi-wasm32-*)"
mkdir -p "$stdlib/lib-dynload"
cp "$plat_dir"/*.py "$stdlib/lib-dynload/"
# sysconfigdata records build paths: point them at the stable names used for the compiled objects.
sed -i "s#$work/python#/usr/src/python3.11#g; s#$work/build#/usr/src/python3.11/build#g; s#$work/zlib-install#/usr/src/zlib-install#g; s#$work/zlib#/usr/src/zlib#g; s#$work#/usr/src#g" \
  "$stdlib/lib-dynload/"*.py
# Bytecode compiled by the same CPython version, hash-based (no mtimes, no source stat on import: the stdlib in a
# Box never changes), with the in-Box path recorded for tracebacks.
"$build_python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || die "$build_python is not 3.11; bytecode would not match"
"$build_python" -m compileall -q -j 1 --invalidation-mode unchecked-hash -s "$stage/lib" -p /usr/local/lib \
  "$stdlib" >&2 || log "compileall reported errors (files that do not compile under 3.11 keep source only)"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
files_json() {
  local first=1
  for f in "$@"; do
    [[ $first -eq 1 ]] || printf ','
    first=0
    printf '{"name":"%s","sha256":"%s"}' "$(basename "$f")" "$(sha_of "$f")"
  done
}
py_files=("$work/src"/python3.11_*); zlib_files=("$work/src"/zlib_*)
py_version="$(sed -n 's/^#define PY_VERSION[[:space:]]*"\(.*\)"/\1/p' "$work/python/Include/patchlevel.h")"
clang_version="$(clang --version | sed -n 1p)"
stdlib_count="$(find "$stdlib" -type f | wc -l)"
export MANIFEST_WORK="$work" MANIFEST_PY_VERSION="$py_version" MANIFEST_KEY="$key" MANIFEST_SCRIPT_SHA="$(sha_of "$script_path")" \
  MANIFEST_PY_PKG="$py_ver" MANIFEST_ZLIB_PKG="$zlib_ver" MANIFEST_CLANG="$clang_version" \
  MANIFEST_TOOLCHAIN="$toolchain_versions" MANIFEST_CFLAGS="$py_cflags" MANIFEST_LDFLAGS="$py_ldflags" \
  MANIFEST_ZLIB_CFLAGS="$zlib_cflags" MANIFEST_CONFIGURE="${configure_args[*]}" MANIFEST_NA="${na_modules[*]}" \
  MANIFEST_WASM_SHA="$(sha_of "$stage/python.wasm")" MANIFEST_WASM_SIZE="$(stat -c %s "$stage/python.wasm")" \
  MANIFEST_STDLIB_COUNT="$stdlib_count" MANIFEST_PY_FILES="[$(files_json "${py_files[@]}")]" \
  MANIFEST_ZLIB_FILES="[$(files_json "${zlib_files[@]}")]" MANIFEST_BUILD_PY="$("$build_python" --version 2>&1)" \
  MANIFEST_BUILD_PY_PKG="$(dpkg-query -W -f='${Version}' python3.11)" \
  MANIFEST_WASI_PATCHES="[$(files_json "${wasi_patches[@]}")]"
"$build_python" - "$stage/manifest.json" <<'EOF'
import json, os, sys
e = os.environ
toolchain = dict(line.split("=", 1) for line in e["MANIFEST_TOOLCHAIN"].splitlines() if line)
manifest = {
    "name": "python",
    "version": e["MANIFEST_PY_VERSION"],
    "target": "wasm32-wasi",
    "wasi": "preview1",
    "cacheKey": e["MANIFEST_KEY"],
    "files": {
        "interpreter": "python.wasm",
        "stdlib": "lib/python" + ".".join(e["MANIFEST_PY_VERSION"].split(".")[:2]),
        "prefix": "/usr/local",
    },
    "interpreter": {"sha256": e["MANIFEST_WASM_SHA"], "size": int(e["MANIFEST_WASM_SIZE"])},
    "stdlibFileCount": int(e["MANIFEST_STDLIB_COUNT"]),
    "sourceDateEpoch": int(e["SOURCE_DATE_EPOCH"]),
    "inputs": {
        "script": {"path": "scripts/runtimes/python/build.sh", "sha256": e["MANIFEST_SCRIPT_SHA"]},
        "sources": [
            {"package": "python3.11", "version": e["MANIFEST_PY_PKG"], "debianPatchesApplied": False,
             "files": json.loads(e["MANIFEST_PY_FILES"]),
             "wasiPatches": json.loads(e["MANIFEST_WASI_PATCHES"])},
            {"package": "zlib", "version": e["MANIFEST_ZLIB_PKG"], "files": json.loads(e["MANIFEST_ZLIB_FILES"])},
        ],
        "toolchain": {"clang": e["MANIFEST_CLANG"], "packages": toolchain},
        "buildPython": {"path": "/usr/bin/python3.11", "version": e["MANIFEST_BUILD_PY"],
                        "package": "python3.11=" + e["MANIFEST_BUILD_PY_PKG"]},
        "flags": {
            "configure": e["MANIFEST_CONFIGURE"].split(" "),
            "CFLAGS": e["MANIFEST_CFLAGS"].split(" "),
            "LDFLAGS": e["MANIFEST_LDFLAGS"].split(" "),
            "zlibCFLAGS": e["MANIFEST_ZLIB_CFLAGS"].split(" "),
            "unavailableModules": e["MANIFEST_NA"].split(" "),
        },
    },
}
# Temporary build paths never reach the manifest: flags hold the stable prefix-map targets only.
def scrub(v):
    if isinstance(v, str):
        return v.replace(os.environ.get("MANIFEST_WORK", "\0"), "/usr/src")
    if isinstance(v, list):
        return [scrub(x) for x in v]
    if isinstance(v, dict):
        return {k: scrub(x) for k, x in v.items()}
    return v
with open(sys.argv[1], "w") as f:
    json.dump(scrub(manifest), f, indent=2, sort_keys=True)
    f.write("\n")
EOF

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
chmod -R u+rwX,go+rX,go-w "$stage"
mv "$stage" "$out"
log "done: $out ($(du -sh "$out" | cut -f1))"
echo "$out"
