# Pristine Debian 12 roots for the fresh-machine checks (sourced, not run).
#
# A root is `debootstrap --variant=minbase bookworm`: about what the
# debian:12 image holds (no git, curl, sudo, compilers or Node.js), with the
# image's package sources (bookworm, -updates, -security) taken from this
# machine's apt configuration. The first root of a run is made by
# debootstrap (about a minute) and kept as a tarball in $TS_FRESH_CACHE for
# a week; every root after that is unpacked from it (a second or two).
#
# Only two things of this machine go into a root, both about reaching the
# package registries from here: its apt sources, and its CA bundle when this
# machine's network needs one of its own for HTTPS (NODE_EXTRA_CA_CERTS), so
# that npm can reach its registry. Packages are downloaded into a cache
# shared by the roots of one run (what an apt proxy would do); they are
# still installed by the project's own scripts inside each root.
#
# Needs root (chroot, mount) and debootstrap, which it installs.

: "${TS_FRESH_CACHE:=/var/tmp/tourney-stats-fresh}"
FRESH_ROOTS=()

fresh_die() {
  echo "fresh: $*" >&2
  exit 1
}

fresh_log() { echo "== [$(date +%H:%M:%S)] $*"; }

# Makes (or refreshes) the base tarball.
fresh_base() {
  local tgz=$TS_FRESH_CACHE/bookworm-minbase.tgz
  [ "$(id -u)" -eq 0 ] || fresh_die "needs root (chroot and mount)"
  mkdir -p "$TS_FRESH_CACHE/apt-archives/partial"
  if [ -s "$tgz" ] && [ -z "$(find "$tgz" -mtime +7)" ]; then
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    fresh_log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  fresh_log "debootstrap --variant=minbase bookworm"
  local tmp=$TS_FRESH_CACHE/debootstrap.$$
  rm -rf "$tmp"
  if ! debootstrap --variant=minbase bookworm "$tmp" >"$TS_FRESH_CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$TS_FRESH_CACHE/debootstrap.log" >&2
    rm -rf "$tmp"
    fresh_die "debootstrap failed"
  fi
  tar -C "$tmp" -czf "$tgz.new" . && mv "$tgz.new" "$tgz"
  rm -rf "$tmp"
}

# fresh_root DIR: a new pristine root at DIR, mounted and ready for chroot.
# fresh_cleanup (run at exit) ends its processes and removes it.
fresh_root() {
  local root=$1
  fresh_base
  rm -rf "$root"
  mkdir -p "$root"
  FRESH_ROOTS+=("$root")
  tar -C "$root" -xzf "$TS_FRESH_CACHE/bookworm-minbase.tgz"
  # The debian:12 image's sources: bookworm, bookworm-updates and
  # bookworm-security, as this machine reaches them.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$root/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  elif [ -f /etc/apt/sources.list ]; then
    cp /etc/apt/sources.list "$root/etc/apt/sources.list"
  fi
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    cp -L "$NODE_EXTRA_CA_CERTS" "$root/etc/fresh-network-ca.pem"
  fi
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"
  mount --bind "$TS_FRESH_CACHE/apt-archives" "$root/var/cache/apt/archives"
}

# fresh_run ROOT USER DIR COMMAND...: runs COMMAND (bash -c) in ROOT as
# USER in DIR with a login-like environment, the way a user's shell would.
fresh_run() {
  local root=$1 user=$2 dir=$3
  shift 3
  local home=/root
  [ "$user" = root ] || home=/home/$user
  local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 TERM=dumb)
  [ -f "$root/etc/fresh-network-ca.pem" ] &&
    env+=(NODE_EXTRA_CA_CERTS=/etc/fresh-network-ca.pem)
  env -i "${env[@]}" chroot "$root" /usr/sbin/runuser -u "$user" -- \
    /bin/bash -c "cd '$dir' && $*" </dev/null
}

# fresh_user ROOT NAME: a user with sudo, as an administrator would set one
# up (sudo is the only package installed here by hand: it is the premise).
fresh_user() {
  local root=$1 user=$2
  fresh_run "$root" root / "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends sudo" >"$root.sudo.log" 2>&1 ||
    { cat "$root.sudo.log" >&2; fresh_die "could not install sudo"; }
  rm -f "$root.sudo.log"
  chroot "$root" useradd --create-home --shell /bin/bash "$user"
  echo "$user ALL=(ALL) NOPASSWD:ALL" >"$root/etc/sudoers.d/$user"
  chmod 0440 "$root/etc/sudoers.d/$user"
}

# fresh_copy_project ROOT DIR OWNER: this working tree as a user would
# unpack a release: no .git, no build trees, no installed npm packages.
fresh_copy_project() {
  local root=$1 dir=$2 owner=$3 src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  mkdir -p "$root$dir"
  tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./data \
    --exclude=node_modules --exclude=./tests/out -cf - . |
    tar -C "$root$dir" -xf -
  chroot "$root" chown -R "$owner:" "$dir"
}

# Processes whose root is ROOT.
fresh_pids() {
  local root p
  root=$(readlink -f "$1")
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
  done
  return 0
}

fresh_cleanup() {
  local root pids
  for root in "${FRESH_ROOTS[@]}"; do
    [ -d "$root" ] || continue
    pids=$(fresh_pids "$root")
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    sleep 0.2
    umount -R -l "$root/var/cache/apt/archives" "$root/dev" "$root/sys" \
      "$root/proc" 2>/dev/null
    if [ -z "${TS_FRESH_KEEP:-}" ]; then
      # Only once nothing is mounted below it.
      grep -q " $(readlink -f "$root")/" /proc/mounts ||
        rm -rf --one-file-system "$root"
    fi
  done
}

# fresh_free_port: a TCP port nothing listens on (a chroot shares this
# machine's network).
fresh_free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
