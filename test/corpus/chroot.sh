#!/usr/bin/env bash
# Runs a command in an image's root filesystem the way a container runtime does: the layers stacked with
# overlayfs (what docker's overlay2 driver does, so what the command changes lands in --upper, deletions as
# overlayfs whiteouts), a fresh /proc and a minimal /dev, the environment exactly as given, then chroot and cd.
# Mounts live in the caller's mount namespace: run it under `unshare --mount --pid --fork [--net]`, so everything
# mounted here disappears with the command (and --net leaves it no network at all).
#
# Usage: chroot.sh --lower DIR[:DIR…] (top first) --upper DIR --work DIR --merged DIR [--bind HOST:GUEST]…
#                  [--env-file FILE (NUL-separated NAME=value)] [--wd DIR] -- COMMAND [ARG…]
set -euo pipefail

lower='' upper='' work='' merged='' env_file='' wd=/
binds=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --lower) lower="$2"; shift 2 ;;
    --upper) upper="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --merged) merged="$2"; shift 2 ;;
    --bind) binds+=("$2"); shift 2 ;;
    --env-file) env_file="$2"; shift 2 ;;
    --wd) wd="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "chroot.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$lower" && -n "$upper" && -n "$work" && -n "$merged" && $# -gt 0 ]] || { echo "chroot.sh: missing arguments" >&2; exit 2; }
[[ "$(readlink /proc/1/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]] || { echo "chroot.sh: run me under unshare --mount --pid --fork" >&2; exit 2; }

mkdir -p "$upper" "$work" "$merged"
# Nothing mounted here may propagate back to the host's namespace.
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
# Mount points the image lacks are not created: creating them would write into the layer.
if [[ -d "$merged/proc" ]]; then mount -t proc -o nosuid,nodev,noexec proc "$merged/proc"; fi
if [[ -d "$merged/dev" ]]; then
  mount -t tmpfs -o nosuid,mode=0755,size=64k tmpfs "$merged/dev"
  for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$node"
    mknod -m 0666 "$merged/dev/$name" c "$major" "$minor"
  done
  ln -s /proc/self/fd "$merged/dev/fd"
  ln -s /proc/self/fd/0 "$merged/dev/stdin"
  ln -s /proc/self/fd/1 "$merged/dev/stdout"
  ln -s /proc/self/fd/2 "$merged/dev/stderr"
  mkdir -m 1777 "$merged/dev/shm"
fi
for b in ${binds[@]+"${binds[@]}"}; do
  host="${b%%:*}" guest="${b#*:}"
  [[ -e "$merged$guest" ]] || { echo "chroot.sh: bind target $guest does not exist in the image" >&2; exit 2; }
  mount --bind "$host" "$merged$guest"
done

envs=()
if [[ -n "$env_file" ]]; then mapfile -d '' -t envs < "$env_file"; fi
# env -i: the command sees the image's environment and nothing of this script's (bash adds PWD, SHLVL, _).
# unshare --root/--wd: chroot and chdir, then execvp with the image's PATH, like a runtime's exec.
exec /usr/bin/env -i ${envs[@]+"${envs[@]}"} /usr/bin/unshare --root="$merged" --wd="$wd" -- "$@"
