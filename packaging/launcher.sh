#!/bin/sh
# dvp single-file launcher (written by build.spec). The program is a PyInstaller bundle in the
# tar.gz appended below. It is unpacked once per binary hash into a cache directory and run
# from there, so every start after the first costs an exec, not an unpack.
set -e
hash=@HASH@
skip=@SKIP@
case "$0" in /*) self=$0 ;; *) self=$(pwd)/$0 ;; esac
if [ -n "$DVP_CACHE_DIR" ]; then base=$DVP_CACHE_DIR
elif [ "$(id -u)" = 0 ]; then base=/var/cache/dvp
else base=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dvp
fi
dir=$base/$hash
if [ ! -x "$dir/dvp/dvp" ]; then
  mkdir -p "$base"
  tmp=$(mktemp -d "$base/.unpack.XXXXXX")
  if ! tail -c +"$skip" "$self" | tar -xzf - -C "$tmp"; then
    rm -rf "$tmp"; echo "dvp: cannot unpack $self into $base" >&2; exit 1
  fi
  mv "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"   # another start won the race: use its copy
  # keep the cache small: this version and the one unpacked before it (the previous version,
  # which an upgrade's rollback runs); every older one goes
  kept=
  for d in $(ls -1t "$base" 2>/dev/null); do
    [ "$d" = "$hash" ] && continue
    case "$d" in .unpack.*) continue ;; esac
    if [ -z "$kept" ]; then kept=$d; else rm -rf "${base:?}/$d"; fi
  done
fi
DVP_EXECUTABLE=$self exec "$dir/dvp/dvp" "$@"
exit 1
