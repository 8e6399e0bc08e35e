#!/usr/bin/env bash
# Builds QuickJS for WASI (wasm32-wasi, a preview1 command: qjs) from Debian trixie's quickjs source package with
# Debian's patch series applied, using bookworm's clang-19/lld-19/libclang-rt-19-dev-wasm32 and wasi-libc.
#
# Usage: build.sh [--cache-dir DIR] [--force]
#   Prints the output directory (last stdout line); logs go to stderr.
# Output directory:
#   qjs.wasm        stripped interpreter (WASI preview1 command; `qjs [--std] script.js args`)
#   manifest.json   version, build inputs (source package + sha256, patches, toolchain, flags)
# Cached under a key hashing this script, its patch and shim files, the source package version and the toolchain
# package versions; concurrent callers wait for one build (flock); rebuilds are byte-identical.
#
# Patches: Debian's series (enable_multiarch_build, fix_armel_build) is applied by dpkg-source; both change only
# the Makefile, which this build does not run (it compiles the Makefile's object list itself), so neither has an
# effect on qjs.wasm; none is dropped. fix_armel_build's -latomic would not link for wasm32 anyway (no libatomic;
# Atomics are off without threads). Then boxproxy's wasi.patch (see its header), and wasi-shim/: stub headers and
# ENOSYS stubs for what WASI preview1 lacks (processes, pipes, terminals, dlopen) plus a realpath() over readlink
# (bookworm's 2022 wasi-libc has none) and an empty <setjmp.h> (dtoa.c includes it without using it).
# wasi-libc: bookworm's binary package. Trixie's newer wasi-libc source (0.0~git20241209) is listed in the
# index but its files answer 404 on this archive, and QuickJS needs nothing it adds (no setjmp use).
set -euo pipefail

cache_dir="${BOXPROXY_RUNTIME_CACHE:-${HOME}/.cache/boxproxy/runtimes}"
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cache-dir) cache_dir="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: ERROR: $*" >&2; exit 1; }

script_path="$(readlink -f "$0")"
here="$(dirname "$script_path")"
src_pkg=quickjs
suite=trixie
toolchain_pkgs=(clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc)

# --- prerequisites --------------------------------------------------------------------------------------------
need_pkgs=()
for p in "${toolchain_pkgs[@]}" dpkg-dev; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || need_pkgs+=("$p")
done
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "missing packages ${need_pkgs[*]} and not root to install them"
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

DEBIAN_SOURCE_STATE="$cache_dir/apt"
source "$here/../lib/debian-source.sh"
qjs_ver="$(debian_source_version "$suite" "$src_pkg")" || die "cannot read Debian's $suite source index"
[[ -n "$qjs_ver" ]] || die "Debian $suite has no source package $src_pkg"

# Every file of this recipe is an input: the script, the patch and the shim.
recipe_files=("$script_path" "$here/wasi.patch" $(cd "$here" && find wasi-shim -type f | LC_ALL=C sort | sed "s#^#$here/#"))
recipe_sha="$(for f in "${recipe_files[@]}"; do echo "${f#"$here"/} $(sha256sum "$f" | cut -d' ' -f1)"; done)"
toolchain_versions="$(dpkg-query -W -f='${Package}=${Version}\n' "${toolchain_pkgs[@]}" | sort)"
key="$( { echo "$recipe_sha"; echo "$src_pkg=$qjs_ver"; echo "$toolchain_versions"; } | sha256sum | cut -c1-16)"
upstream_ver="${qjs_ver%-*}"
out="$cache_dir/quickjs-$upstream_ver-$key"

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.quickjs-$key.lock"
flock 9
if [[ $force -eq 0 && -f "$out/manifest.json" ]]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi
rm -rf "$out"

work="$(mktemp -d "$cache_dir/.build-quickjs-$key.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "building QuickJS $qjs_ver for wasm32-wasi in $work (key $key)"

# --- sources ----------------------------------------------------------------------------------------------------
mkdir -p "$work/src"
debian_source_fetch "$suite" "$src_pkg=$qjs_ver" "$work/src" || die "apt-get source $src_pkg=$qjs_ver failed"
debian_source_unpack "$work/src" "$src_pkg" "$work/quickjs" || die "dpkg-source -x $src_pkg failed"
series="$(grep -v '^\s*#' "$work/quickjs/debian/patches/series" | sed '/^\s*$/d')"
(cd "$work/quickjs" && patch -p1 --no-backup-if-mismatch -s < "$here/wasi.patch" >&2) || die "wasi.patch does not apply"

changelog_date="$(sed -n 's/^ -- .*>  //p' "$work/quickjs/debian/changelog" | sed -n 1p)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(date -d "$changelog_date" +%s)}"
export LC_ALL=C TZ=UTC

# A sysroot holding only wasi-libc: clang-19's wasm32-wasi search path ends in the host's /usr/include, which
# must not leak glibc headers into a WASI build.
sysroot="$work/sysroot"
mkdir -p "$sysroot/include" "$sysroot/lib"
ln -s /usr/include/wasm32-wasi "$sysroot/include/wasm32-wasi"
ln -s /usr/lib/wasm32-wasi "$sysroot/lib/wasm32-wasi"

qjs_version="$(cat "$work/quickjs/VERSION")"
prefix_map="-ffile-prefix-map=$work/quickjs=/usr/src/quickjs -ffile-prefix-map=$work=/usr/src"
# The Makefile's flags for qjs (-fwrapv, _GNU_SOURCE, CONFIG_VERSION) plus the WASI emulations it needs, with
# two changes for the engines' native stacks (QuickJS recurses in C for every JS call, and wasmtime's default
# stack is 512 KiB): -Os instead of -O2 halves the native frame of the interpreter loop (a plain recursion reached
# 400-800 JS frames in wasmtime at -O2, 800-1600 at -Os; CPU of a fib+JSON run within 10%), and QuickJS's own
# stack limit is 256 KiB of the 8 MiB shadow stack (~700 JS frames), so deep recursion throws "InternalError:
# stack overflow" in the script instead of trapping the engine.
defines=(-D_GNU_SOURCE "-DCONFIG_VERSION=\"$qjs_version\"" -DJS_DEFAULT_STACK_SIZE=262144)
wasi_cflags=(-Os -fwrapv -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID
  -I"$here/wasi-shim/include" -include wasi_shim.h)
wasi_ldflags=(-lm -lwasi-emulated-signal -lwasi-emulated-process-clocks -lwasi-emulated-getpid
  -Wl,--stack-first -Wl,-z,stack-size=8388608)
wasi_cc=(clang-19 --target=wasm32-wasi "--sysroot=$sysroot")
lib_objs=(quickjs dtoa libregexp libunicode cutils quickjs-libc)

# --- host qjsc: compiles repl.js into repl.c, as the Makefile's host-qjsc does ---------------------------------
(
  cd "$work/quickjs"
  clang-19 -O2 -fwrapv "${defines[@]}" $prefix_map -o "$work/host-qjsc" qjsc.c "${lib_objs[@]/%/.c}" -lm -ldl -lpthread >&2
  "$work/host-qjsc" -s -c -o repl.c -m repl.js
) || die "host qjsc failed"

# --- qjs.wasm -------------------------------------------------------------------------------------------------
(
  cd "$work/quickjs"
  mkdir -p .obj
  for f in qjs repl "${lib_objs[@]}"; do
    "${wasi_cc[@]}" "${wasi_cflags[@]}" "${defines[@]}" $prefix_map -Wno-deprecated-declarations -c "$f.c" -o ".obj/$f.o" >&2 &
    # Two at a time: the machine has 2 cores.
    if (( $(jobs -r | wc -l) >= 2 )); then wait -n; fi
  done
  wait
  "${wasi_cc[@]}" "${wasi_cflags[@]}" $prefix_map -c "$here/wasi-shim/wasi_shim.c" -o .obj/wasi_shim.o >&2
  objs=()
  for f in qjs repl "${lib_objs[@]}" wasi_shim; do objs+=(".obj/$f.o"); done
  "${wasi_cc[@]}" -o "$work/qjs.wasm" "${objs[@]}" "${wasi_ldflags[@]}" >&2
) || die "compiling qjs.wasm failed"
for f in qjs repl "${lib_objs[@]}"; do [[ -f "$work/quickjs/.obj/$f.o" ]] || die "$f.c did not compile"; done
[[ -f "$work/qjs.wasm" ]] || die "no qjs.wasm produced"

# --- output -----------------------------------------------------------------------------------------------------
stage="$work/out"
mkdir -p "$stage"
llvm-strip-19 -o "$stage/qjs.wasm" "$work/qjs.wasm"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
json_str() { node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }
src_files="$(for f in "$work/src"/*; do printf '{"name":%s,"sha256":"%s"},' "$(json_str "$(basename "$f")")" "$(sha_of "$f")"; done)"
recipe_json="$(for f in "${recipe_files[@]}"; do printf '{"path":%s,"sha256":"%s"},' "$(json_str "scripts/runtimes/quickjs/${f#"$here"/}")" "$(sha_of "$f")"; done)"
export M_KEY="$key" M_VERSION="$qjs_version" M_PKG="$qjs_ver" M_SRC_FILES="[${src_files%,}]" M_RECIPE="[${recipe_json%,}]" \
  M_SERIES="$series" M_TOOLCHAIN="$toolchain_versions" M_CLANG="$(clang-19 --version | sed -n 1p)" \
  M_CFLAGS="${wasi_cflags[*]} ${defines[*]}" M_LDFLAGS="${wasi_ldflags[*]}" \
  M_WASM_SHA="$(sha_of "$stage/qjs.wasm")" M_WASM_SIZE="$(stat -c %s "$stage/qjs.wasm")" M_HERE="$here" M_WORK="$work"
# node writes the manifest: it is what boxproxy runs on, so it is there wherever this script runs.
node - "$stage/manifest.json" <<'JS'
const fs = require('fs');
const e = process.env;
const recipe = JSON.parse(e.M_RECIPE);
const sorted = (v) => (Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object'
  ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])])) : v);
const manifest = {
  name: 'quickjs',
  version: e.M_VERSION.replace(/-/g, '.'),
  upstreamVersion: e.M_VERSION,
  target: 'wasm32-wasi',
  wasi: 'preview1',
  cacheKey: e.M_KEY,
  files: { interpreter: 'qjs.wasm' },
  interpreter: { sha256: e.M_WASM_SHA, size: Number(e.M_WASM_SIZE) },
  sourceDateEpoch: Number(e.SOURCE_DATE_EPOCH),
  inputs: {
    script: { path: 'scripts/runtimes/quickjs/build.sh', sha256: recipe[0].sha256 },
    recipe,
    sources: [{
      package: 'quickjs', suite: 'trixie', version: e.M_PKG, debianPatchesApplied: true,
      debianPatches: e.M_SERIES.split(/\s+/).filter(Boolean).map((name) => ({
        name, applied: true, effect: 'Makefile only; this build compiles without the Makefile, so none on qjs.wasm' })),
      debianPatchesDropped: [],
      files: JSON.parse(e.M_SRC_FILES),
    }],
    boxproxyPatches: ['scripts/runtimes/quickjs/wasi.patch', 'scripts/runtimes/quickjs/wasi-shim/'],
    wasiLibc: { package: 'wasi-libc (bookworm binary)',
      note: "trixie's wasi-libc source answers 404 on this archive; QuickJS needs nothing newer" },
    toolchain: { clang: e.M_CLANG,
      packages: Object.fromEntries(e.M_TOOLCHAIN.split('\n').filter(Boolean).map((l) => l.split('=', 2))) },
    flags: { CFLAGS: e.M_CFLAGS.split(' ').map((f) => f.split(e.M_HERE).join('scripts/runtimes/quickjs')),
      LDFLAGS: e.M_LDFLAGS.split(' ') },
  },
};
fs.writeFileSync(process.argv[2], JSON.stringify(sorted(manifest), null, 2) + '\n');
JS

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
chmod -R u+rwX,go+rX,go-w "$stage"
mv "$stage" "$out"
log "done: $out ($(du -sh "$out" | cut -f1))"
echo "$out"
