#!/usr/bin/env bash
# Installs built Spillway binaries as systemd services on this host (or into --destdir):
# binaries, service users, units, env files and the directories for tokens and keys.
# Idempotent: a second run changes nothing, and existing env files are never overwritten.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'EOF'
usage: deploy/install.sh [--from DIR] [--prefix DIR] [--destdir DIR]
  --from DIR     where the built binaries are: a build tree (default: build/ of this
                 repository) or a folder holding them, directly or in bin/
  --prefix DIR   where binaries go (default /usr/local, so /usr/local/bin)
  --destdir DIR  install under DIR instead of /, e.g. an image's root or a test's temporary
                 folder; needs no root, and systemd is not told
Then: set SPILLWAY_AGENT_REGION and the rest in /etc/spillway/agent.env (or cp.env) and
`systemctl enable --now spillway-agent` (or spillway-cp).
EOF
}

FROM="$REPO/build"
PREFIX=/usr/local
DESTDIR=""
while (($#)); do
  case $1 in
    --from) FROM=${2:?--from needs a directory}; shift 2 ;;
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --destdir) DESTDIR=${2:?--destdir needs a directory}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case $PREFIX in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
if [ -n "$DESTDIR" ]; then
  mkdir -p "$DESTDIR"
  DESTDIR=$(cd "$DESTDIR" && pwd)
fi
# Ownership can be given only by root; without it (a test's --destdir) modes still are.
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# find_binary NAME BUILD_SUBDIR: the binary in a build tree, or in a flat or bin/ folder.
find_binary() {
  local candidate
  for candidate in "$FROM/$2/$1" "$FROM/bin/$1" "$FROM/$1"; do
    if [ -f "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  echo "install.sh: no $1 in $FROM (build first: deploy/build.sh)" >&2
  return 1
}
CP_BIN=$(find_binary spillway-cp controlplane)
AGENT_BIN=$(find_binary spillway-agent dataplane)
CTL_BIN=$(find_binary spillwayctl controlplane/cli)

# put SOURCE TARGET MODE: copies only when the content differs, then sets the mode, so a
# second run does not touch a running binary's file or a unit's time stamp.
put() {
  local source=$1 target=$2 mode=$3
  mkdir -p "$(dirname "$target")"
  if ! cmp -s "$source" "$target" 2>/dev/null; then
    # A new inode, not an overwrite in place: a running binary keeps its old file.
    cp "$source" "$target.tmp.$$"
    chmod "$mode" "$target.tmp.$$"
    mv -f "$target.tmp.$$" "$target"
    echo "installed ${target#"$DESTDIR"}"
  fi
  chmod "$mode" "$target"
}

BIN_DIR="$DESTDIR$PREFIX/bin"
put "$CP_BIN" "$BIN_DIR/spillway-cp" 0755
put "$AGENT_BIN" "$BIN_DIR/spillway-agent" 0755
put "$CTL_BIN" "$BIN_DIR/spillwayctl" 0755

# Service users, from a sysusers.d file so systemd re-creates them on an image reset too.
SYSUSERS="$DESTDIR/etc/sysusers.d/spillway.conf"
put "$REPO/deploy/systemd/spillway.sysusers" "$SYSUSERS" 0644
mkdir -p "$DESTDIR/etc"
if command -v systemd-sysusers >/dev/null 2>&1; then
  # Quiet when the users exist already; with --destdir they go into DESTDIR/etc/passwd.
  systemd-sysusers ${DESTDIR:+--root="$DESTDIR"} "$SYSUSERS" 2>&1 | sed 's/^/  /'
elif [ -z "$DESTDIR" ]; then
  for user in spillway-cp spillway-agent; do
    id "$user" >/dev/null 2>&1 || useradd --system --user-group --home-dir "/var/lib/$user" \
      --no-create-home --shell /usr/sbin/nologin "$user"
  done
else
  echo "no systemd-sysusers: users not created in $DESTDIR ($SYSUSERS describes them)"
fi

# group_id NAME: the group's id in the installed system's /etc/group (DESTDIR's if given).
group_id() {
  awk -F: -v name="$1" '$1 == name { print $3 }' "$DESTDIR/etc/group" 2>/dev/null
}

# Units go to /etc/systemd/system: they belong to the administrator, not to a package.
# ExecStart names the binaries under --prefix.
UNIT_DIR="$DESTDIR/etc/systemd/system"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for unit in spillway-cp spillway-agent; do
  sed "s#^ExecStart=/usr/local/bin/#ExecStart=$PREFIX/bin/#" \
    "$REPO/deploy/systemd/$unit.service" >"$WORK/$unit.service"
  put "$WORK/$unit.service" "$UNIT_DIR/$unit.service" 0644
done

# /etc/spillway: the env files (root only: systemd reads them before dropping privileges,
# and a standalone agent's backend keys may be set there), and one folder per service for
# its tokens, certificates and keys, readable by that service's group and no one else.
ETC="$DESTDIR/etc/spillway"
mkdir -p "$ETC"
chmod 0755 "$ETC"
for name in cp agent; do
  dir="$ETC/$name"
  mkdir -p "$dir"
  chmod 0750 "$dir"
  gid=$(group_id "spillway-$name")
  if ((IS_ROOT)) && [ -n "$gid" ]; then
    chown "0:$gid" "$dir"
  fi
  env_file="$ETC/$name.env"
  if [ -e "$env_file" ]; then
    # Kept as the administrator left it; a newer template lands beside it to compare.
    if ! cmp -s "$REPO/deploy/systemd/$name.env" "$env_file"; then
      put "$REPO/deploy/systemd/$name.env" "$env_file.new" 0600
    fi
  else
    put "$REPO/deploy/systemd/$name.env" "$env_file" 0600
  fi
done

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "spillway installed under ${DESTDIR:-/}: edit /etc/spillway/{cp,agent}.env, then" \
  "systemctl enable --now spillway-cp (or spillway-agent)"
