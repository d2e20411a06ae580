# Sourced by e2e/controlplane/build.sh and charts/build-helm.sh: runs one build step with the Go
# tool's output (hundreds of "go: downloading" lines on a fresh machine) in a log file, and shows one
# line for it on stderr instead:
#   [1/5] kube-apiserver v1.35.4 -> ~/.cache/cert-agent/controlplane-v1.35.4-0123456789ab ... built in 112s
# On a terminal the elapsed seconds count up in place until the step ends; elsewhere (CI, a pipe) the
# line is written in two parts, at the start and at the end. When the step fails the line ends in
# "FAILED after Ns (exit C)", the last BUILD_LOG_TAIL_LINES (40) lines of the log follow, and
# build_step returns the step's exit code.

BUILD_LOG_TAIL_LINES=${BUILD_LOG_TAIL_LINES:-40}

# $1 with $HOME shown as ~ (shorter lines).
build_step_tilde() {
  case $1 in
    "$HOME"/*) printf '~/%s' "${1#"$HOME"/}" ;;
    *) printf '%s' "$1" ;;
  esac
}

# build_step N M WHAT DEST LOG CMD...: runs CMD (a command or a shell function) with stdout and stderr
# appended to LOG.
build_step() {
  local n=$1 m=$2 what=$3 dest=$4 log=$5
  shift 5
  local label
  label="[$n/$m] $what -> $(build_step_tilde "$dest") ..."
  local start=$SECONDS rc=0 ticking=0
  if [ -t 2 ]; then
    # A line wider than the terminal wraps, and \r would then rewrite only its last part.
    local cols
    cols=$(stty size <&2 2>/dev/null | cut -d' ' -f2) || true
    [ $(( ${#label} + 24 )) -le "${cols:-80}" ] && ticking=1
  fi
  [ "$ticking" = 1 ] || printf '%s ' "$label" >&2
  "$@" >>"$log" 2>&1 &
  local pid=$!
  # Interrupted or killed, we stop the build too (wait, unlike a foreground command, lets the trap run
  # at once).
  trap 'kill "$pid" 2>/dev/null' EXIT
  if [ "$ticking" = 1 ]; then
    local shown=-1
    while kill -0 "$pid" 2>/dev/null; do
      if [ $(( SECONDS - start )) != "$shown" ]; then
        shown=$(( SECONDS - start ))
        printf '\r%s %ds' "$label" "$shown" >&2
      fi
      sleep 0.2
    done
  fi
  wait "$pid" || rc=$?
  trap - EXIT
  [ "$ticking" = 1 ] && printf '\r%s ' "$label" >&2
  local elapsed=$(( SECONDS - start )) clear=""
  [ "$ticking" = 1 ] && clear=$'\033[K' # erases what the counter left to the right
  if [ "$rc" -eq 0 ]; then
    printf 'built in %ds%s\n' "$elapsed" "$clear" >&2
    return 0
  fi
  printf 'FAILED after %ds (exit %d)%s\n' "$elapsed" "$rc" "$clear" >&2
  printf -- '--- last %d lines of %s:\n' "$BUILD_LOG_TAIL_LINES" "$log" >&2
  tail -n "$BUILD_LOG_TAIL_LINES" "$log" >&2
  printf -- '---\n' >&2
  return "$rc"
}
