#!/usr/bin/env bash
# Proves the Dockerfile without a Docker engine: runs its stages in fresh
# Debian 12 roots (tests/fresh/lib.sh) the way `docker build` would, then
# runs the image's entrypoint there the way `docker run` would, and checks
#   - every RUN step of both stages succeeds (a package missing from a
#     stage fails here: the build stage's cmake, or the runtime's linker);
#   - the build context honours .dockerignore (no build trees, no
#     node_modules, no data);
#   - the runtime root resolves every shared library of the binary (ldd);
#   - the image runs as a non-root USER, serves /healthz on its port, its
#     HEALTHCHECK command exits 0, a record POSTed is written to a file in
#     the declared VOLUME, and STOPSIGNAL ends it with exit 0.
#
#   tests/fresh/image-recipe.sh [Dockerfile [context]]
#   (default: the repository's Dockerfile, the repository as context)
#
# Understood: FROM debian:12[-slim] [AS name], RUN (shell form), WORKDIR,
# COPY [--from=stage] src... dest, ENV, USER, VOLUME, EXPOSE, STOPSIGNAL,
# HEALTHCHECK [options] CMD [...], ENTRYPOINT [...], CMD [...]; anything
# else fails, so the Dockerfile cannot drift past what is proved. Needs root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/fresh/lib.sh
. "$here/lib.sh"
dockerfile=${1:-$repo/Dockerfile}
context=$(cd "${2:-$(dirname "$dockerfile")}" && pwd)
out=${TS_FRESH_OUT:-$repo/build-fresh}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/image.log
: >"$log"
trap fresh_cleanup EXIT
t_start=$SECONDS
timings=()
step_time() { timings+=("$(printf '%-40s %5d s' "$1" "$2")"); }

fail() {
  echo "image-recipe: $*" >&2
  echo "image-recipe: FAILED (log: $log)" >&2
  exit 1
}

# ---- the Dockerfile, as logical lines (continuations joined) ----
instructions=()
cur=""
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%$'\r'}
  if [ -z "$cur" ]; then
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  fi
  if [[ $line =~ \\[[:space:]]*$ ]]; then
    cur+="${line%\\*} "
    continue
  fi
  cur+=$line
  instructions+=("$cur")
  cur=""
done <"$dockerfile"
[ -z "$cur" ] || instructions+=("$cur")

# JSON exec form ["a", "b"] -> the global array words (no escapes allowed).
parse_exec() {
  local s=$1
  words=()
  [[ $s =~ ^\[(.*)\]$ ]] || return 1
  s=${BASH_REMATCH[1]}
  [[ $s == *\\* ]] && return 1
  while [[ $s =~ ^[[:space:]]*\"([^\"]*)\"[[:space:]]*(,(.*))?$ ]]; do
    words+=("${BASH_REMATCH[1]}")
    s=${BASH_REMATCH[3]}
  done
  [[ $s =~ ^[[:space:]]*$ ]]
}

# ---- the build context, filtered by .dockerignore ----
# Patterns are anchored at the context root; "*" stays within one path
# element; a leading "**/" matches at any depth (up to 8 here).
make_context() {
  local dest=$1 p d pats=()
  if [ -f "$context/.dockerignore" ]; then
    while IFS= read -r p || [ -n "$p" ]; do
      p=${p%$'\r'}
      [[ $p =~ ^[[:space:]]*(#|$) ]] && continue
      [[ $p == !* ]] && fail ".dockerignore: exceptions (!) are not understood"
      p=${p#/}
      p=${p%/}
      if [[ $p == '**/'* ]]; then
        p=${p#'**/'}
        pats+=("./$p")
        d="./*"
        for _ in 1 2 3 4 5 6 7 8; do
          pats+=("$d/$p")
          d+="/*"
        done
      else
        [[ $p == *'**'* ]] && fail ".dockerignore: ** only as a prefix"
        pats+=("./$p")
      fi
    done <"$context/.dockerignore"
  fi
  local excl=()
  for p in "${pats[@]}"; do excl+=("--exclude=$p"); done
  mkdir -p "$dest"
  tar -C "$context" --anchored --wildcards --no-wildcards-match-slash \
    "${excl[@]}" -cf - . | tar -C "$dest" -xf -
  # What .dockerignore must keep out of every image build.
  local leak
  leak=$(cd "$dest" && find . \( -name node_modules -o -path './build*' \
    -o -path ./data -o -path ./.git \) -print -prune | head -n 5)
  [ -z "$leak" ] || fail "the build context holds what .dockerignore should exclude: $leak"
}

# ---- run the stages ----
declare -A stage_root=()
stage_n=0
root=""
user=root
workdir=/
envs=()
volumes=()
exposed=()
stopsignal=SIGTERM
health=()
entry=()
cmd=()

run_in() { # RUN: /bin/sh -c in the stage's root, as its user, in its workdir
  local home=/root
  [ "$user" = root ] || home=/
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=$home DEBIAN_FRONTEND=noninteractive "${envs[@]}" \
    chroot --userspec="$(ids "$user")" "$root" /bin/sh -c "cd '$workdir' && $1"
}

ids() { # USER value -> uid:gid, resolved in the stage's root
  local u=${1%%:*} g=""
  [[ $1 == *:* ]] && g=${1#*:}
  if ! [[ $u =~ ^[0-9]+$ ]]; then
    local line
    line=$(grep -m1 "^$u:" "$root/etc/passwd") || fail "USER $u: no such user"
    IFS=: read -r _ _ uid gid0 _ <<<"$line"
    u=$uid
    [ -n "$g" ] || g=$gid0
  fi
  if [ -z "$g" ]; then
    g=$(awk -F: -v u="$u" '$3 == u { print $4; exit }' "$root/etc/passwd")
    g=${g:-0}
  fi
  echo "$u:$g"
}

t0=$SECONDS
for ins in "${instructions[@]}"; do
  word=${ins%%[[:space:]]*}
  rest=${ins#"$word"}
  rest=${rest#"${rest%%[![:space:]]*}"}
  word=${word^^}
  echo "# $word $rest" >>"$log"
  case $word in
    FROM)
      [ -z "$root" ] || step_time "stage $stage_n built" $((SECONDS - t0))
      t0=$SECONDS
      read -r image as name <<<"$rest"
      case $image in debian:12 | debian:12-slim | debian:bookworm | debian:bookworm-slim) ;;
        *) fail "FROM $image: only Debian 12 images are proved here" ;;
      esac
      stage_n=$((stage_n + 1))
      root=$TS_FRESH_CACHE/image-stage$stage_n-$$
      fresh_log "stage $stage_n: FROM $image (a pristine Debian 12 root)"
      fresh_root "$root"
      stage_root[$stage_n]=$root
      [ "${as^^}" = AS ] && [ -n "$name" ] && stage_root[$name]=$root
      user=root workdir=/ envs=() volumes=() exposed=() health=() entry=() cmd=()
      stopsignal=SIGTERM
      ;;
    RUN)
      [[ $rest == \[* ]] && fail "RUN: only the shell form is understood"
      fresh_log "stage $stage_n: RUN ${rest:0:70}..."
      run_in "$rest" >>"$log" 2>&1 || {
        tail -n 25 "$log" >&2
        fail "stage $stage_n: RUN failed: ${rest:0:200}"
      }
      ;;
    WORKDIR)
      [[ $rest == /* ]] || rest=$workdir/$rest
      workdir=$rest
      mkdir -p "$root$workdir"
      ;;
    ENV)
      if [[ $rest =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
        read -r -a kvs <<<"$rest" # values here hold no spaces or quotes
        for kv in "${kvs[@]}"; do
          [[ $kv == *\"* || $kv == *\'* ]] && fail "ENV: quoted values are not understood"
          envs+=("$kv")
        done
      else
        envs+=("${rest%% *}=${rest#* }")
      fi
      ;;
    COPY)
      from=""
      if [[ $rest == --from=* ]]; then
        from=${rest%% *}
        from=${from#--from=}
        rest=${rest#* }
      fi
      [[ $rest == --* ]] && fail "COPY: option ${rest%% *} is not understood"
      [[ $rest == \[* ]] && fail "COPY: only the plain form is understood"
      read -r -a args <<<"$rest"
      dest=${args[-1]}
      unset 'args[-1]'
      [[ $dest == /* ]] || dest=$workdir/$dest
      if [ -z "$from" ]; then
        src_root=$out/context-$$
        rm -rf "$src_root"
        make_context "$src_root"
      else
        src_root=${stage_root[$from]:-}
        [ -n "$src_root" ] || fail "COPY --from=$from: no such stage"
      fi
      for a in "${args[@]}"; do
        src=$src_root/${a#/}
        [ -e "$src" ] || fail "COPY: $a not found in ${from:-the build context}"
        if [ -d "$src" ]; then
          mkdir -p "$root$dest"
          cp -a "$src/." "$root$dest/"
        elif [[ $dest == */ ]] || [ -d "$root$dest" ]; then
          mkdir -p "$root$dest"
          cp -a "$src" "$root$dest/"
        else
          mkdir -p "$(dirname "$root$dest")"
          cp -a "$src" "$root$dest"
        fi
      done
      # Docker copies files as root:root unless --chown is given.
      [ -n "$from" ] || rm -rf "$src_root"
      ;;
    USER) user=$rest ;;
    VOLUME)
      if parse_exec "$rest"; then volumes+=("${words[@]}"); else
        read -r -a v <<<"$rest"
        volumes+=("${v[@]}")
      fi
      ;;
    EXPOSE) read -r -a exposed <<<"$rest" ;;
    STOPSIGNAL) stopsignal=$rest ;;
    HEALTHCHECK)
      while [[ $rest == --* ]]; do
        rest=${rest#*[[:space:]]}
        rest=${rest#"${rest%%[![:space:]]*}"}
      done
      [[ $rest == CMD* ]] || fail "HEALTHCHECK: only CMD is understood"
      rest=${rest#CMD}
      rest=${rest#"${rest%%[![:space:]]*}"}
      if parse_exec "$rest"; then health=("${words[@]}"); else health=(/bin/sh -c "$rest"); fi
      ;;
    ENTRYPOINT)
      parse_exec "$rest" || fail "ENTRYPOINT: only the exec form is understood"
      entry=("${words[@]}")
      ;;
    CMD)
      parse_exec "$rest" || fail "CMD: only the exec form is understood"
      cmd=("${words[@]}")
      ;;
    *) fail "$word: not understood by this script (see its header)" ;;
  esac
done
step_time "stage $stage_n built" $((SECONDS - t0))
[ $stage_n -ge 2 ] || fail "expected a build stage and a runtime stage"

# ---- the image, as docker run would start it ----
t0=$SECONDS
[ ${#entry[@]} -gt 0 ] || fail "no ENTRYPOINT"
bin=${entry[0]}
uidgid=$(ids "$user")
[ "${uidgid%%:*}" != 0 ] || fail "the image runs as root (USER $user)"
fresh_log "runtime: ldd $bin"
libs=$(chroot "$root" ldd "$bin" 2>&1) || fail "ldd $bin failed in the runtime stage: $libs"
echo "$libs" >>"$log"
if grep -q 'not found' <<<"$libs"; then
  grep 'not found' <<<"$libs" >&2
  fail "the runtime stage lacks shared libraries"
fi

image_port=""
for kv in "${envs[@]}"; do [[ $kv == TS_PORT=* ]] && image_port=${kv#TS_PORT=}; done
[ ${#exposed[@]} -gt 0 ] || fail "no EXPOSE"
[ "${exposed[0]%/tcp}" = "${image_port:-8080}" ] ||
  fail "EXPOSE ${exposed[0]} is not the port the server listens on (${image_port:-8080})"
[ ${#volumes[@]} -gt 0 ] || fail "no VOLUME for the embedded store"
[ ${#health[@]} -gt 0 ] || fail "no HEALTHCHECK"

# A volume's mount point that the image does not have is made by the
# engine, owned by root: create it that way, as docker would.
for v in "${volumes[@]}"; do
  [ -d "$root$v" ] || mkdir -p "$root$v"
done
db=""
for kv in "${envs[@]}"; do [[ $kv == TS_SQLITE_PATH=* ]] && db=${kv#TS_SQLITE_PATH=}; done
[ -n "$db" ] || db=$workdir/data/tourney-stats.db
in_volume=0
for v in "${volumes[@]}"; do [[ $db == "${v%/}"/* ]] && in_volume=1; done
[ $in_volume = 1 ] || fail "TS_SQLITE_PATH $db is not inside a VOLUME (${volumes[*]})"

port=$(fresh_free_port) || fail "no free port"
# `docker run -e TS_PORT=...`: this root shares the machine's network.
run_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  HOME=/ "${envs[@]}" TS_PORT="$port")
fresh_log "runtime: ${entry[*]} ${cmd[*]} as $user ($uidgid), TS_PORT=$port"
srv_log=$out/image-server.log
env -i "${run_env[@]}" chroot --userspec="$uidgid" "$root" /bin/sh -c \
  'cd "$1" && shift && exec "$@"' sh "$workdir" "${entry[@]}" "${cmd[@]}" \
  >"$srv_log" 2>&1 &
pid=$!
up=0
for _ in $(seq 1 100); do
  kill -0 $pid 2>/dev/null || break
  if curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    up=1
    break
  fi
  sleep 0.1
done
[ $up = 1 ] || {
  cat "$srv_log" >&2
  fail "the image's entrypoint did not serve /healthz"
}
fresh_log "runtime: /healthz answers"

# HEALTHCHECK runs inside the container, with its user and environment.
env -i "${run_env[@]}" chroot --userspec="$uidgid" "$root" /bin/sh -c \
  'cd "$1" && shift && exec "$@"' sh "$workdir" "${health[@]}" >>"$log" 2>&1 ||
  fail "HEALTHCHECK ${health[*]} failed while the server runs"
fresh_log "runtime: HEALTHCHECK ${health[*]}: exit 0"

answer=$(curl -sS -m 5 -H 'Content-Type: application/json' \
  -d '{"eventID":"img-1","eventName":"INSERT","dynamodb":{"SequenceNumber":"1","NewImage":{"player":{"S":"image"},"score":{"N":"3.5"},"winner":{"BOOL":true}}}}' \
  "http://127.0.0.1:$port/v1/stream-records") || fail "POST failed"
[[ $answer == *'"applied":1'* ]] || fail "POST answered $answer"
stats=$(curl -sS -m 5 "http://127.0.0.1:$port/v1/players/image/stats")
[[ $stats == *'"games":1'* ]] || fail "stats answered $stats"
[ -s "$root$db" ] || fail "no store file at $db in the volume"
owner=$(stat -c %u "$root$db")
[ "$owner" = "${uidgid%%:*}" ] || fail "$db is owned by uid $owner, not the image's user"
fresh_log "runtime: a POSTed record is stored in $db (volume ${volumes[*]})"

# The entrypoint was exec'd: $pid is the server itself.
kill -s "${stopsignal#SIG}" $pid
rc=0
timeout 15 tail --pid=$pid -f /dev/null || fail "still running 15 s after $stopsignal"
wait $pid || rc=$?
[ $rc -eq 0 ] || {
  tail -n 5 "$srv_log" >&2
  fail "exit $rc after $stopsignal"
}
fresh_log "runtime: $stopsignal: exit 0"
step_time "runtime checks" $((SECONDS - t0))

echo "== the Dockerfile in fresh Debian 12 roots"
printf '%s\n' "${timings[@]}"
printf '%-40s %5d s\n' "total" $((SECONDS - t_start))
echo "image-recipe: the Dockerfile builds and its image runs as declared"
