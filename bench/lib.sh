# Shared by the bench scripts (sourced, not run).

# Prints the crac binary to time: $CRAC_BIN when set, else a release build made now.
# $1 names the bench for the error message.
crac_binary() {
    local crac
    if [ -n "${CRAC_BIN:-}" ]; then
        crac="$CRAC_BIN"
    else
        echo "building crac (release)..." >&2
        cargo build --release --quiet -p crac
        crac="${CARGO_TARGET_DIR:-$PWD/target}/release/crac"
    fi
    [ -x "$crac" ] || { echo "$1 bench: $crac missing after the build" >&2; return 1; }
    printf '%s\n' "$crac"
}
