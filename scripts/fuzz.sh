#!/usr/bin/env bash
# Coverage-guided fuzzing of Gatehouse's parsers with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [SECONDS]      # SECONDS per target, default 60
#
# Builds every target in fuzz/ once, runs each for SECONDS on a temporary copy of its seed
# corpus (fuzz/corpus/<target>/ is never written to), prints one line per target with its
# number of executions and a total, and exits non-zero if any target crashed, naming the
# reproducer under fuzz/artifacts/<target>/. Replay one with
#   target/fuzz-build/<triple>/release/<target> <reproducer>
#
# Installs cargo-fuzz when missing. Uses a nightly toolchain when one is installed, else the
# stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes a few unstable flags).
# Environment knobs:
#   FUZZ_TARGETS="a b"     run only these targets (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER=NAME    none (default) or address; see the note below
#   FUZZ_TOOLCHAIN=NAME    nightly or stable, instead of picking automatically
#   FUZZ_KEEP_WORKDIR=1    keep the temporary corpus copies and logs (the path is printed)
#
# Sanitizer: the targets are safe Rust, where AddressSanitizer finds little that a bounds check
# would not, and it makes the fuzzers several times slower and the build bigger. Both work here:
# FUZZ_SANITIZER=address builds an ASan variant (kept apart from the default one by cargo).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]   (a positive whole number of seconds per target)" >&2
  exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$repo/fuzz"
# A subdirectory of the repository's one target directory: target/ (ignored by git), or
# $CARGO_TARGET_DIR when the caller set one (relative to the caller's directory, as for cargo).
target_root="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_root" in
  /*) ;;
  *) target_root="$PWD/$target_root" ;;
esac
target_dir="$target_root/fuzz-build"
sanitizer="${FUZZ_SANITIZER:-none}"
start=$SECONDS

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  # Asks rustup what is installed rather than trying `cargo +nightly`, which a rustup set to
  # auto-install would answer by trying to download one.
  installed="$(rustup toolchain list 2>/dev/null || true)"
  if grep -q '^nightly' <<<"$installed"; then
    toolchain=nightly
  else
    toolchain=stable
  fi
fi
case "$toolchain" in
  nightly)
    cargo_fuzz=(cargo +nightly fuzz)
    rustc_cmd=(rustc +nightly)
    ;;
  stable)
    # The default (stable) toolchain, allowed its unstable flags.
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
    rustc_cmd=(rustc)
    ;;
  *)
    echo "FUZZ_TOOLCHAIN must be nightly or stable, not '$toolchain'" >&2
    exit 2
    ;;
esac
triple="$("${rustc_cmd[@]}" -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"

echo "== fuzz: $("${rustc_cmd[@]}" --version) ($toolchain), $(cargo fuzz --version), sanitizer $sanitizer"
cd "$fuzz_dir"
build_start=$SECONDS
"${cargo_fuzz[@]}" build --fuzz-dir "$fuzz_dir" --target "$triple" --target-dir "$target_dir" \
  --sanitizer "$sanitizer"
echo "== fuzz: built in $((SECONDS - build_start)) s"

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <("${cargo_fuzz[@]}" list --fuzz-dir "$fuzz_dir")
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "no fuzz targets found in $fuzz_dir" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-fuzz.XXXXXX")"
if [ "${FUZZ_KEEP_WORKDIR:-0}" = 1 ]; then
  echo "== fuzz: work directory $work (kept)"
else
  trap 'rm -rf -- "$work"' EXIT
fi

if [ "$sanitizer" = address ]; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
fi

total=0
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$bin_dir/$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz target $t was not built ($bin missing)" >&2
    exit 1
  fi
  corpus="$work/corpus/$t"
  mkdir -p "$corpus"
  if [ -d "$fuzz_dir/corpus/$t" ]; then
    cp -R -- "$fuzz_dir/corpus/$t/." "$corpus/"
  fi
  seeds="$(find "$corpus" -type f | wc -l)"
  artifacts="$fuzz_dir/artifacts/$t"
  mkdir -p "$artifacts"
  log="$work/$t.log"

  echo "== fuzz: $t for $seconds s ($seeds seeds)"
  rc=0
  # -timeout: one input running longer than that is reported as a hang (a crash).
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?

  execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
  if [ -z "$execs" ]; then
    # No final stats (killed?): the last status line "#N ..." is the best count there is.
    execs="$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n 1)"
  fi
  execs="${execs:-0}"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
  cov="$(sed -n 's/^#[0-9][0-9]*[[:space:]].* cov: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
  grown="$(find "$corpus" -type f | wc -l)"
  total=$((total + execs))

  line="$(printf '%-18s %12s executions  %7s/s  cov %5s  corpus %3s -> %5s' \
    "$t" "$execs" "${rate:-?}" "${cov:-?}" "$seeds" "$grown")"
  if [ "$rc" -eq 0 ]; then
    summary+=("$line  ok")
  else
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    summary+=("$line  CRASHED (exit $rc): ${artifact:-no reproducer written, see the log above}")
    failed+=("$t")
    echo "---- $t: last lines of the libFuzzer log ----"
    tail -n 60 "$log"
    echo "---- $t: the panic ----"
    grep -A 2 -m 1 'panicked at' "$log" || echo "(no Rust panic: a hang, a memory limit or a sanitizer report)"
    echo "---- end of $t ----"
  fi
done

echo "== fuzz summary ($seconds s per target, sanitizer $sanitizer)"
printf 'fuzz: %s\n' "${summary[@]}"
echo "fuzz total: ${#targets[@]} targets, $total executions, ${#failed[@]} crashed, $((SECONDS - start)) s in all"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (reproducers under fuzz/artifacts/)" >&2
  exit 1
fi
