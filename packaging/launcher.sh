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
  # keep the cache small: drop bundles of other versions not used for a week
  find "$base" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" -mtime +7 -exec rm -rf {} + 2>/dev/null || true
fi
DVP_EXECUTABLE=$self exec "$dir/dvp/dvp" "$@"
exit 1
